"""``python -m dass.build_db``: alias of ``python -m dass.database`` (the old command name, kept for
scripts, notes and the running builds that use it)."""
from .cli import run_main
from .database.__main__ import _parser, main

if __name__ == "__main__":
    run_main(main, parser=_parser())
