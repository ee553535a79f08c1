"""Entry modules import lazily: importing one never pulls in scipy or matplotlib (the check runs in a
fresh interpreter and reads its ``sys.modules``)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ["dass.search", "dass.kd", "dass.build_db", "dass.meta_train", "dass.evaluate", "dass.train_teacher",
           "dass.data", "dass.space", "dass.compat"]

def test_importing_entry_modules_never_imports_scipy_or_matplotlib():
    code = ("import importlib, json, sys\n"
            f"for m in {ENTRIES!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in ('scipy', 'matplotlib') if m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
