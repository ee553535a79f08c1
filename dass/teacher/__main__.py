"""``python -m dass.teacher --config configs/teacher/cpu.yaml dataset=glyphs/latin``: train a teacher
(:func:`dass.teacher.training_run.run`).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.teacher.training_run` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import TeacherRunConfig

main, _parser = stage_entry(
    "python -m dass.teacher",
    "Train the teacher of a space profile on a dataset.",
    TeacherRunConfig, "dass.teacher.training_run")

if __name__ == "__main__":
    run_main(main, parser=_parser())
