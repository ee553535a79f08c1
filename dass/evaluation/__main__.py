"""``python -m dass.evaluation --config configs/evaluation/cpu.yaml db=<db folder> [predictors='{dass: <ckpt>}']``:
rank meta-test students with baselines and predictors; tables and plots (:mod:`dass.evaluation.evaluate_tasks`).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.evaluation.evaluate_tasks` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import EvaluationConfig

main, _parser = stage_entry(
    "python -m dass.evaluation",
    "Rank meta-test students with baselines and predictors; tables and plots.",
    EvaluationConfig, "dass.evaluation.evaluate_tasks")

if __name__ == "__main__":
    run_main(main, parser=_parser())
