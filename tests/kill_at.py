"""Run ``python -m <module> <args>`` and SIGKILL it at a chosen state, not at a chosen time.

    python tests/kill_at.py <glob> <n> <module> [args...]

Every file the project writes ends with ``os.replace(tmp, final)`` (:mod:`dass.io`). This wrapper
counts the replaces whose final path matches ``<glob>`` (``fnmatch`` on the whole path) and, right
after the ``n``-th one, sends SIGKILL to its own process: the kill lands exactly when the ``n``-th
matching file is complete, whatever the speed or load of the machine, and nothing the process would
have done after it (the next epoch, the next student) survives. The exit status is then
``-SIGKILL``; a process that finishes before the ``n``-th write exits normally, which the caller
sees as a failed precondition.

Only works for work done in this process (``workers=1``, no ``torchrun``): spawned children import
``os`` afresh.
"""
from __future__ import annotations

import fnmatch
import os
import runpy
import signal
import sys


def kill_after(pattern: str, n: int) -> None:
    """From now on, this process SIGKILLs itself right after its ``n``-th ``os.replace`` onto a path
    matching ``pattern`` (also used by ``fork_runner.py`` for its ``kill_at`` cases)."""
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *a, **kw):
        nonlocal seen
        real_replace(src, dst, *a, **kw)
        if fnmatch.fnmatch(os.fspath(dst), pattern):
            seen += 1
            if seen == n:
                os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def main(argv: list[str]) -> None:
    pattern, n, module, args = argv[0], int(argv[1]), argv[2], argv[3:]
    kill_after(pattern, n)
    sys.argv = [module, *args]
    sys.path[0] = os.getcwd()  # as ``python -m`` has it, not this file's folder
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
