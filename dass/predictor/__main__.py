"""``python -m dass.predictor --config configs/predictor/cpu.yaml db=<folder> run_dir=<folder>``: meta-train
the predictor on a database (:func:`dass.predictor.meta_train.run`; ``python -m dass.meta_train`` is an
alias).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.predictor.meta_train` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import MetaTrainConfig

main, _parser = stage_entry(
    "python -m dass.predictor",
    "Meta-train the DaSS accuracy predictor on a database.",
    MetaTrainConfig, "dass.predictor.meta_train")

if __name__ == "__main__":
    run_main(main, parser=_parser())
