"""Fixtures shared by the test files, each built once per test run (session scope).

* ``one_thread`` (automatic): one torch thread for the whole run; the machine the tests were
  written on has 2 cores shared by several jobs, where many threads on tiny tensors are slower
  than one. Subprocesses get ``OMP_NUM_THREADS=1`` from the ``env`` fixture.
* ``tiny_teacher``: the state dict of a random teacher of the tiny space
  (:data:`assets.tiny_db.TINY`, 5 classes, seed 0) with non-trivial BN statistics. Read only.
* ``tiny_db``: two meta-test tasks of that space, their teachers and the images of the first
  (:func:`assets.tiny_db.write_tiny_db`): ``(root, {key: task dict})``. Read only.
* ``synthetic_db``: 8 tasks (4 meta-train, 2 meta-valid, 2 meta-test) of 60 students whose accuracy
  is a known function of their MACs (:mod:`synthetic_db`). Read only.
* ``env``: the environment for ``python -m dass...`` subprocesses: this tree first on the path,
  one thread.
* ``forked``: run ``python -m <module> ...`` (or a script) in a process of its own forked from one
  warm interpreter per test process (:mod:`fork_runner`: torch, the package and ``torch._dynamo``
  imported once, ~3 s a process less), for tests of what a command does, not of a fresh interpreter.
* ``kill_at``: run an entry module (forked, as above) and SIGKILL it right after its ``n``-th write
  of a file matching a pattern (:mod:`kill_at`), for kill-and-resume tests that do not depend on timing.

Under pytest-xdist (``-n auto --dist loadfile``: pytest.ini) the files of :data:`LONG_FILES` are handed
out first, longest first, the others after them by number of tests (xdist's own order): a long file
of few tests (the GPU check: one test, ~25 s) no longer starts last and ends the run on one worker.

Tests marked ``slow`` (registered in ``pytest.ini``) take more than about a second each (1.2 s of call time
on the 2-core machine, measured with ``--durations=0``);
``python -m pytest -m "not slow" tests`` leaves them out.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FORK_RUNNER = Path(__file__).with_name("fork_runner.py")
# wall seconds of the longest files in a full run on the 2-core machine (--durations=0, summed per
# file); only their order matters, and a stale number costs balance, never a test
LONG_FILES = {"tests/core/test_config_fuzz_pipeline.py": 83, "tests/compat/test_original_readme.py": 62,
              "tests/database/test_database_build.py": 42, "tests/core/test_reliability_round3.py": 42,
              "tests/benchmarks/test_bench.py": 41, "tests/core/test_config_fuzz.py": 29,
              "tests/benchmarks/test_gpu_check.py": 25, "tests/train/test_train.py": 20,
              "tests/evaluation/test_evaluation.py": 20, "tests/export/test_export.py": 17}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with :data:`LONG_FILES` first (longest first), then xdist's order."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node):
            if not getattr(self, "_long_first", False):   # the first assignment: the queue is complete
                self._long_first = True
                for scope in sorted((s for s in self.workqueue if s in LONG_FILES), key=LONG_FILES.get):
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def env() -> dict:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


@pytest.fixture(scope="session")
def tiny_teacher() -> dict:
    from assets.tiny_db import TINY, tiny_teacher_state
    return tiny_teacher_state(TINY, 5, seed=0)


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory):
    from assets.tiny_db import write_tiny_db
    root = tmp_path_factory.mktemp("tiny_db")
    return root, write_tiny_db(root, data_root=root / "data")


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory) -> Path:
    from synthetic_db import write_synthetic_db
    root = tmp_path_factory.mktemp("synthetic_db")
    write_synthetic_db(root, noise=0.1)
    return root


@pytest.fixture(scope="session")
def forked(env):
    """``forked(argv, cwd=REPO, env_=None, kill_at=None, timeout=600)``: ``python *argv`` (``-m <module> ...`` or a
    script), forked from this test process's warm :mod:`fork_runner` (started on first use); returns
    a CompletedProcess (text stdout and stderr). ``env_`` defaults to the ``env`` fixture's."""
    runner, lock = None, threading.Lock()

    def run(argv, cwd=REPO, env_=None, kill_at=None, timeout: float = 600) -> subprocess.CompletedProcess:
        nonlocal runner
        argv = [str(a) for a in argv]
        case = {"argv": argv, "cwd": str(cwd), "env": env_ or env, **({"kill_at": kill_at} if kill_at else {})}
        with lock:
            if runner is None:   # its own process group: a timeout ends it and the case it forked
                runner = subprocess.Popen([sys.executable, str(FORK_RUNNER), "torch._dynamo"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, env=env, cwd=REPO, start_new_session=True)
            runner.stdin.write(json.dumps(case) + "\n")
            runner.stdin.flush()
            if not select.select([runner.stdout], [], [], timeout)[0]:
                os.killpg(runner.pid, signal.SIGKILL)
                runner.wait()
                runner = None
                raise AssertionError(f"timed out after {timeout} s: {argv}")
            line = runner.stdout.readline()
        assert line, f"tests/fork_runner.py ended (exit {runner.poll()}) on {argv}"
        r = json.loads(line)
        return subprocess.CompletedProcess(argv, r["returncode"], r["stdout"], r["stderr"])

    yield run
    if runner is not None:
        runner.stdin.close()
        runner.wait(timeout=60)


@pytest.fixture(scope="session")
def kill_at(forked):
    """``kill_at(pattern, n, module, args, cwd=...)``: run ``python -m module args`` (forked) until its
    ``n``-th completed write of a file whose path matches the ``fnmatch`` ``pattern``, where it is
    SIGKILLed; returns the CompletedProcess (return code ``-SIGKILL`` when the state was reached)."""
    def run(pattern: str, n: int, module: str, args, cwd=REPO) -> subprocess.CompletedProcess:
        return forked(["-m", module, *args], cwd=cwd, kill_at=[pattern, n])
    return run
