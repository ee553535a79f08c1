"""``python -m dass.kd --config configs/kd/cpu.yaml teacher=<teacher.pt> dataset=<name> ...``: KD-train one
student from a teacher (:func:`dass.kd.distil_student.run`).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.kd.distil_student` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import KDRunConfig

main, _parser = stage_entry(
    "python -m dass.kd",
    "Knowledge-distil one student from a teacher (one or more seeds).",
    KDRunConfig, "dass.kd.distil_student")

if __name__ == "__main__":
    run_main(main, parser=_parser())
