"""SIGKILL a process at a chosen state, not at a chosen time (tests only; ``kill_at`` cases of
``fork_runner.py``, the ``kill_at`` fixture of conftest.py).

Every file the project writes ends with ``os.replace(tmp, final)`` (:mod:`dass.io`). After
:func:`kill_after`, the process counts the replaces whose final path matches ``pattern`` (``fnmatch``
on the whole path) and, right after the ``n``-th one, sends SIGKILL to itself: the kill lands exactly when the ``n``-th
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
import signal


def kill_after(pattern: str, n: int) -> None:
    """From now on, this process SIGKILLs itself right after its ``n``-th ``os.replace`` onto a path
    matching ``pattern``."""
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
