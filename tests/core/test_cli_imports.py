"""Instant CLIs: ``python -m dass.<stage> --help``, usage errors and config errors never import torch,
scipy or matplotlib. Each stage's ``__main__`` imports only its torch-free ``config`` and
``dass.cli``, and imports the stage's ``run`` after the config has been checked.

Both checks run in fresh interpreters: one imports every entry, builds its parser, formats its help
and loads a config with an unknown key, then reads ``sys.modules``; the other runs real commands
under ``python -X importtime`` and reads the modules they imported."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dass.__main__ import STAGES

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "scipy", "matplotlib")
ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
# the module ``python -m dass.<name>`` runs: a stage package's __main__
ENTRIES = [f"dass.{s}.__main__" for s in STAGES]


def _python(*args, **kw):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          timeout=120, **kw)


def test_entries_parse_help_and_refuse_configs_without_heavy_imports():
    code = f"""
import importlib, json, sys
import dataclasses
from dass import config as cfgmod
from dass.errors import DassError
refused = []
for name in {ENTRIES!r}:
    mod = importlib.import_module(name)
    parser = getattr(mod, "_parser", None) or mod.make_parser
    parser().format_help()
for cls in ("dass.teacher.config:TeacherRunConfig", "dass.database.config:DatabaseConfig",
            "dass.predictor.config:MetaTrainConfig", "dass.search.config:SearchConfig",
            "dass.kd.config:KDRunConfig", "dass.evaluation.config:EvaluationConfig",
            "dass.pipeline.config:PipelineConfig"):
    m, c = cls.split(":")
    try:
        cfgmod.load(getattr(importlib.import_module(m), c), None, ["no_such_key=1"])
    except DassError as e:
        refused.append("no_such_key" in str(e))
print(json.dumps({{"heavy": sorted(m for m in {HEAVY!r} if m in sys.modules), "refused": refused}}))
"""
    r = _python("-c", code)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["refused"] == [True] * 7
    assert out["heavy"] == []


def _imported(stderr: str) -> set[str]:
    """Top-level names of the modules listed by ``-X importtime`` (``import time: self | cumulative | name``)."""
    out = set()
    for line in stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[0].split(":")[1].strip().isdigit():
            out.add(parts[2].strip().split(".")[0])
    return out


@pytest.mark.parametrize("argv, rc", [
    (["-m", "dass.search", "--help"], 0),
    (["-m", "dass.kd", "seeds=[1,1]", "teacher=t.pt", "dataset=d"], 2),   # a config error (a seed twice)
    (["-m", "dass.database", "--config", "nowhere.yaml"], 2),
    (["-m", "dass.teacher", "teacher_recipe.epochs=1"], 2),                      # no dataset named
    (["-m", "dass.evaluation", "top_k=3"], 2),                            # no database named
    (["-m", "dass.predictor", "--help"], 0),
    (["-m", "dass", ], 0),
], ids=["search-help", "kd-config-error", "database-missing-config", "teacher-no-dataset", "evaluation-no-db",
        "predictor-help", "stage-list"])
def test_commands_import_no_heavy_module(argv, rc):
    r = _python("-X", "importtime", *argv)
    assert r.returncode == rc, r.stderr[-2000:]
    imported = _imported(r.stderr)
    assert "dass" in imported  # the listing was read
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_the_check_reads_importtime_lines():
    """The reading the checks rely on, on lines as ``-X importtime`` writes them: it can fail."""
    sample = ("import time: self [us] | cumulative | imported package\n"
              "import time:       412 |        412 |   _io\n"
              "import time:      1843 |     251203 | torch\n"
              "import time:        90 |         90 |       torch._C._distributed\n"
              "import time:       301 |       1102 | dass.cli\n"
              "some other stderr line | with a bar\n")
    assert _imported(sample) == {"_io", "torch", "dass"}


def test_stage_mains_import_only_their_config_and_the_cli_at_module_level():
    """The rule behind the checks above, read from the source: a stage's ``__main__`` imports (at
    module level) only ``__future__``, its own ``config`` and ``dass.cli``; the stage itself comes
    later, inside a function."""
    import ast
    for stage in ("teacher", "database", "predictor", "search", "kd", "evaluation", "pipeline"):
        tree = ast.parse((ROOT / "dass" / stage / "__main__.py").read_text())
        top = {("." * n.level) + (n.module or "") for n in tree.body if isinstance(n, ast.ImportFrom)}
        top |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        assert top <= {"__future__", ".config", "..cli"}, (stage, sorted(top))
        assert ".config" in top and "..cli" in top, stage
