"""``python -m dass.train_teacher``: alias of ``python -m dass.teacher`` (the old command name, kept for
scripts and notes that use it)."""
from .cli import run_main
from .teacher.__main__ import _parser, main

if __name__ == "__main__":
    run_main(main, parser=_parser())
