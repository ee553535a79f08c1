"""Shared plumbing for the ``python -m dass.<stage>`` entry modules.

Every stage: ``--config FILE`` plus ``key=value`` overrides (before or after the options), a run
folder holding the resolved config, a log and the results. :func:`run_main` is the one error
boundary: user errors (DassError) and what the environment or an input file refuses (OSError such as
a read-only or full disk or a name too long, MemoryError, undecodable text or JSON, an image PIL
will not open) print one line ``error: ...`` and exit 2 unless ``--debug`` is given.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from . import config as cfgmod
from . import runid
from .errors import DassError

log = logging.getLogger("dass")


def make_parser(prog: str, description: str, config=None) -> argparse.ArgumentParser:
    """The common parser; ``config`` (the stage's config dataclass) lists its keys under ``--help``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("overrides", nargs="*", help="key=value overrides (dotted keys for nested)")
    if config is not None:
        from .config_help import attach  # lazy: ast, inspect, tokenize (~18 ms) only to list config keys
        attach(p, config)
    return p


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with argparse's usage errors (unknown option, invalid choice,
    missing argument; exit 2) reduced to the one line ``error: <message>`` on stderr, as every other
    user error. Sub-command parsers are covered too; ``--help`` output is untouched."""
    err = io.StringIO()
    # overrides may follow options (``k=v --debug k2=v2``): intermixed parsing, where argparse
    # allows it (not with sub-commands)
    intermixed = parser._subparsers is None
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_intermixed_args(argv) if intermixed else parser.parse_args(argv)
    except SystemExit as e:
        lines = err.getvalue().strip().splitlines()
        if e.code == 2 and lines and ": error: " in lines[-1]:
            err = io.StringIO(f"error: {lines[-1].split(': error: ', 1)[1]}\n")
        raise
    finally:
        sys.stderr.write(err.getvalue())


def describe_error(e: BaseException) -> str | None:
    """The one-line message for an error the environment or an input raised (None: a bug, whose
    traceback should be seen). OSError names its file(s) and the cause."""
    if isinstance(e, DassError):
        return str(e)
    if type(e).__module__.startswith("PIL") and type(e).__name__ in (
            "DecompressionBombError", "UnidentifiedImageError"):
        return f"image refused: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    if isinstance(e, OSError) and (e.errno is not None or e.filename is not None):
        cause = e.strerror or os.strerror(e.errno) if e.errno else str(e)
        names = [str(n) for n in (e.filename, e.filename2) if n is not None]
        where = " -> ".join(_short(n) for n in names)
        hint = {errno.ENOSPC: " (disk full)", errno.EROFS: " (read-only file system)",
                errno.ENAMETOOLONG: " (a path component is longer than the file system allows)"}.get(e.errno, "")
        return f"{where}: {cause}{hint}" if where else f"{cause}{hint}"
    if isinstance(e, MemoryError):
        return f"out of memory{': ' + str(e) if str(e) else ''} (an input claims more data than fits in memory)"
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e.msg} at line {e.lineno})"
    if isinstance(e, UnicodeDecodeError):
        return f"a text input is not valid {e.encoding} (byte {e.start}): give a text file"
    return None


def _short(name: str, limit: int = 160) -> str:
    return name if len(name) <= limit else f"{name[:limit // 2]}...{name[-limit // 2:]}"


def run_main(fn: Callable[[argparse.Namespace], int | None], argv=None, parser=None) -> None:
    """Parse args, call ``fn(args)``; the error boundary of every entry module: DassError and the
    errors of :func:`describe_error` become one ``error:`` line and exit 2 (``--debug`` re-raises)."""
    args = parse_args(parser, argv)
    debug = getattr(args, "debug", False)
    try:
        rc = fn(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        message = describe_error(e)
        if debug or message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.exit(rc or 0)


def stage_entry(prog: str, description: str, config_cls, module: str):
    """``(main, parser_factory)`` of a stage's ``python -m`` entry, for its ``__main__.py``. ``main(args)``
    loads ``config_cls`` from ``--config`` and the overrides, runs its ``check()`` when it has one,
    then imports ``module`` and calls ``module.run(cfg)``. The import comes last on purpose: the
    entry module imports only the (torch-free) config and this file, so ``--help`` and config errors
    never pay for torch."""
    def main(args) -> int:
        cfg = load_config(config_cls, args)
        if hasattr(cfg, "check"):
            cfg.check()
        importlib.import_module(module).run(cfg)
        return 0

    def parser() -> argparse.ArgumentParser:
        return make_parser(prog, description, config_cls)

    return main, parser


def load_config(cls, args):
    return cfgmod.load(cls, args.config, args.overrides)


def setup_run_dir(run_dir, cfg, name: str = "run", identity: dict | None = None) -> Path:
    """Create the run folder, save the resolved config and attach a log file handler. With an
    ``identity`` (:mod:`dass.runid`) a folder holding another run is refused before anything is
    written, and the identity is recorded first."""
    run_dir = Path(run_dir)
    if identity is not None:
        runid.claim(run_dir, identity)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DassError(f"cannot create run folder {run_dir}: {e.strerror}") from None
    if identity is not None:
        runid.record(run_dir, identity)
    cfgmod.save(cfg, run_dir / "config.yaml")
    setup_logging(run_dir / f"{name}.log")
    return run_dir


def setup_run_dir_of_rank(is_main: bool, run_dir, cfg, name: str, identity: dict | None = None) -> None:
    """In a (possibly distributed) run: the main process sets up the run folder
    (:func:`setup_run_dir`), the other ranks only log to stderr."""
    if is_main:
        setup_run_dir(run_dir, cfg, name, identity=identity)
    else:
        setup_logging()


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
