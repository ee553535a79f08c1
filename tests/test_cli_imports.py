"""Entry modules import lazily: importing one never pulls in scipy or matplotlib, and ``--help``,
usage errors and config-key errors are answered before torch is imported (each check runs in a
fresh interpreter and reads its ``sys.modules``)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ["dass.search", "dass.kd", "dass.build_db", "dass.meta_train", "dass.evaluate", "dass.train_teacher",
           "dass.data", "dass.space", "dass.compat"]
WITH_CONFIG_CHECK = ["dass.search", "dass.kd", "dass.train_teacher"]   # configs that need no torch to load

PROBE = """
import json, runpy, sys
sys.argv = [{module!r}] + {argv!r}
code = None
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
print(json.dumps({{"code": code, "loaded": sorted(m for m in ("torch", "scipy", "matplotlib") if m in sys.modules)}}))
"""


def probe(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_entry_modules_never_imports_scipy_or_matplotlib():
    code = ("import importlib, json, sys\n"
            f"for m in {ENTRIES!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in ('scipy', 'matplotlib') if m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("module", ENTRIES)
def test_help_is_answered_without_torch(module):
    out = probe(PROBE.format(module=module, argv=["--help"]))
    assert out == {"code": 0, "loaded": []}


@pytest.mark.parametrize("module", WITH_CONFIG_CHECK)
def test_config_key_errors_are_answered_without_torch(module):
    out = probe(PROBE.format(module=module, argv=["no_such_key=1"]))
    assert out == {"code": 2, "loaded": []}
