"""``python -m dass.pipeline --config configs/pipeline/cpu.yaml dataset=<name> [key=value ...]``:
teacher -> search -> KD -> report for one dataset (see :mod:`dass.pipeline`)."""
from __future__ import annotations

from ..cli import load_config, make_parser, run_main
from . import PipelineConfig, run


def main(args) -> int:
    result = run(load_config(PipelineConfig, args))
    print(f"report: {result['run_dir']}/report.md")
    return 0


def _parser():
    return make_parser("python -m dass.pipeline",
                       "Your own dataset in one command: teacher, search under a budget, KD of the best, "
                       "report (resumable).", PipelineConfig)


if __name__ == "__main__":
    run_main(main, parser=_parser())
