"""Run command-line cases in forked children of one warm interpreter (tests only).

    python tests/fork_runner.py [module ...]

Reads JSON lines ``{"argv": [...], "cwd": ..., "env": {...}}`` on stdin, where ``argv`` is what
would follow ``python`` (``-m dass.<stage> ...`` or ``<script.py> ...``). For each, it forks a child
that takes the case's working folder, environment and arguments and runs the module or script as
``__main__`` (as ``python -m`` / ``python script.py`` would, ``sys.path[0]`` included: the working
folder or the script's folder); stdout and stderr go to files. The parent writes one JSON line
``{"returncode", "stdout", "stderr"}`` per case. A case with ``"kill_at": [<glob>, <n>]`` is
SIGKILLed right after its ``n``-th write of a file matching ``<glob>`` (:mod:`kill_at`). A child's
stdin is ``/dev/null`` (the parent's is the list of cases). torch, numpy, the package and the modules named on
the command line (e.g. ``torch._dynamo``, which the first optimizer of a training run imports: ~1 s)
are imported once, before the first fork, so a case costs its own work, not the imports; each case
still has its own process (exit code, files, no state shared with other cases).
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
import traceback

from kill_at import kill_after  # this file's folder is sys.path[0] until a child sets its own


def _child(case: dict, out_path: str, err_path: str) -> None:
    out = os.open(out_path, os.O_WRONLY)
    err = os.open(err_path, os.O_WRONLY)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    os.chdir(case["cwd"])
    os.environ.clear()
    os.environ.update(case["env"])
    argv = list(case["argv"])
    if case.get("kill_at"):
        kill_after(*case["kill_at"])
    code = 0
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = argv
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException:  # what the interpreter would print before exiting 1
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(warm: list[str]) -> None:
    import importlib

    import numpy  # noqa: F401  (warm imports shared by every child)
    import torch
    torch.set_num_threads(1)
    import dass.cli  # noqa: F401
    for module in warm:
        importlib.import_module(module)
    for line in sys.stdin:
        case = json.loads(line)
        with tempfile.TemporaryDirectory() as tmp:
            out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            for p in (out_path, err_path):
                open(p, "w").close()
            pid = os.fork()
            if pid == 0:
                _child(case, out_path, err_path)
            _, status = os.waitpid(pid, 0)
            rc = os.waitstatus_to_exitcode(status)
            with open(out_path, errors="replace") as f_out, open(err_path, errors="replace") as f_err:
                res = {"returncode": rc, "stdout": f_out.read(), "stderr": f_err.read()}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
