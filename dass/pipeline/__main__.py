"""``python -m dass.pipeline --config configs/pipeline/cpu.yaml dataset=<name> [key=value ...]``:
teacher -> search -> KD -> report for one dataset (:mod:`dass.pipeline.runner`).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.pipeline.runner` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import PipelineConfig

main, _parser = stage_entry(
    "python -m dass.pipeline",
    "Your own dataset in one command: teacher, search under a budget, KD of the best, report (resumable).",
    PipelineConfig, "dass.pipeline.runner")

if __name__ == "__main__":
    run_main(main, parser=_parser())
