"""``python -m dass.meta_train``: alias of ``python -m dass.predictor`` (meta-training; the old command
name, kept for scripts and notes that use it)."""
from .cli import run_main
from .predictor.__main__ import _parser, main

if __name__ == "__main__":
    run_main(main, parser=_parser())
