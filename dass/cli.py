"""Shared plumbing for the ``python -m dass.<stage>`` entry modules.

Every stage: ``--config FILE`` plus ``key=value`` overrides, a run folder holding the resolved
config, a log and the results; user errors (DassError) print one line and exit 2 unless
``--debug`` is given.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
from pathlib import Path
from typing import Callable

from . import config as cfgmod
from .errors import DassError

log = logging.getLogger("dass")


def make_parser(prog: str, description: str, config=None) -> argparse.ArgumentParser:
    """The common parser; ``config`` (the stage's config dataclass) lists its keys under ``--help``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("overrides", nargs="*", help="key=value overrides (dotted keys for nested)")
    if config is not None:
        from .config_help import attach
        attach(p, config)
    return p


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with argparse's usage errors (unknown option, invalid choice,
    missing argument; exit 2) reduced to the one line ``error: <message>`` on stderr, as every other
    user error. Sub-command parsers are covered too; ``--help`` output is untouched."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit as e:
        lines = err.getvalue().strip().splitlines()
        if e.code == 2 and lines and ": error: " in lines[-1]:
            err = io.StringIO(f"error: {lines[-1].split(': error: ', 1)[1]}\n")
        raise
    finally:
        sys.stderr.write(err.getvalue())


def run_main(fn: Callable[[argparse.Namespace], int | None], argv=None, parser=None) -> None:
    """Parse args, call ``fn(args)``, turn DassError (and argparse's usage errors) into one line + exit 2."""
    args = parse_args(parser, argv)
    debug = getattr(args, "debug", False)
    try:
        rc = fn(args)
    except DassError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rc or 0)


def load_config(cls, args):
    return cfgmod.load(cls, args.config, args.overrides)


def setup_run_dir(run_dir, cfg, name: str = "run") -> Path:
    """Create the run folder, save the resolved config and attach a log file handler."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DassError(f"cannot create run folder {run_dir}: {e.strerror}") from None
    cfgmod.save(cfg, run_dir / "config.yaml")
    setup_logging(run_dir / f"{name}.log")
    return run_dir


def setup_logging(logfile=None, level=logging.INFO) -> None:
    """Log to stderr and (optionally) ``logfile``; calling again replaces the previous handlers, so
    in-process reruns neither duplicate lines nor keep a stale stream."""
    root = logging.getLogger("dass")
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(fmt)
    root.addHandler(sh)
    if logfile is not None:
        fh = logging.FileHandler(str(logfile))
        fh.setFormatter(fmt)
        root.addHandler(fh)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
