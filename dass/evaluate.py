"""``python -m dass.evaluate``: alias of ``python -m dass.evaluation`` (the old command name, kept for
scripts and notes that use it)."""
from .cli import run_main
from .evaluation.__main__ import _parser, main

if __name__ == "__main__":
    run_main(main, parser=_parser())
