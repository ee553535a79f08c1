"""``python -m dass.evaluation --config configs/evaluate/cpu.yaml db=<db folder> [predictors='{dass: <ckpt>}']``:
rank meta-test students with baselines and predictors; tables and plots (:mod:`dass.evaluation.stage`;
``python -m dass.evaluate`` is an alias).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.evaluation.stage` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import EvaluateConfig

main, _parser = stage_entry(
    "python -m dass.evaluation",
    "Rank meta-test students with baselines and predictors; tables and plots.",
    EvaluateConfig, "dass.evaluation.stage")

if __name__ == "__main__":
    run_main(main, parser=_parser())
