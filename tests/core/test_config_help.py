"""``--help`` of every entry module lists every key of its config dataclass, with type, default and
meaning read from the dataclass (dass.config_help); ``python -m dass`` lists the stages."""
from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dass.__main__ import STAGES, describe
from dass.config_help import KeyDoc, config_keys, help_text

REPO = Path(__file__).resolve().parents[2]

# stage -> (module holding the parser, config dataclass "module:Class"); compat takes flags only
ENTRIES = {
    "data": ("dass.data.__main__", "dass.data.glyphs:GlyphsConfig"),
    "space": ("dass.space.__main__", "dass.space:SpaceConfig"),
    "teacher": ("dass.teacher.__main__", "dass.teacher.config:TeacherRunConfig"),
    "database": ("dass.database.__main__", "dass.database.config:DatabaseConfig"),
    "predictor": ("dass.predictor.__main__", "dass.predictor.config:MetaTrainConfig"),
    "search": ("dass.search.__main__", "dass.search.config:SearchConfig"),
    "kd": ("dass.kd.__main__", "dass.kd.config:KDRunConfig"),
    "export": ("dass.export.__main__", "dass.export.config:ExportConfig"),
    "evaluation": ("dass.evaluation.__main__", "dass.evaluation.config:EvaluationConfig"),
    "pipeline": ("dass.pipeline.__main__", "dass.pipeline:PipelineConfig"),
    "compat": ("dass.compat.__main__", None),
}


def _class(spec: str):
    mod, name = spec.split(":")
    return getattr(importlib.import_module(mod), name)


def _expected_keys(cls, prefix="") -> list[str]:
    """Dotted keys, walked here independently of dass.config_help."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, tp = prefix + f.name, hints[f.name]
        out.append(key)
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if dataclasses.is_dataclass(tp):
            out += _expected_keys(tp, key + ".")
        elif typing.get_origin(tp) is list and args and dataclasses.is_dataclass(args[0]):
            out += _expected_keys(args[0], key + "[].")
        elif typing.get_origin(tp) is dict and dataclasses.is_dataclass(args[1]):
            out += _expected_keys(args[1], key + ".<name>.")
        elif len(args) == 1 and dataclasses.is_dataclass(args[0]):   # an optional section
            out += _expected_keys(args[0], key + ".")
    return out


def _help(stage: str) -> str:
    module, _ = ENTRIES[stage]
    mod = importlib.import_module(module)
    parser = getattr(mod, "_parser", None) or mod.make_parser
    p = parser()
    if stage == "data":   # the glyph family's keys are under its sub-command
        p = p._subparsers._group_actions[0].choices["glyphs"]
    return p.format_help()


def test_every_stage_is_covered():
    assert set(ENTRIES) == set(STAGES)


@pytest.mark.parametrize("stage", [s for s, (_, c) in ENTRIES.items() if c])
def test_help_lists_every_key_with_a_meaning(stage):
    text = _help(stage)
    lines = {ln.split()[0]: ln for ln in text.splitlines() if ln.startswith("  ") and ln.split()}
    cls = _class(ENTRIES[stage][1])
    for key in _expected_keys(cls):
        assert key in lines, f"{stage}: key {key} missing from --help"
        line = lines[key]
        assert " = " in line, line
        meaning = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        assert meaning, f"{stage}: key {key} has no meaning (add a '# comment' to the field)"


# ------------------------------------------------------------------ how keys are documented

@dataclass
class _Inner:
    """Inner section."""
    a: int = 1        # the a
    b: str = ""


@dataclass
class _Base:
    x: float = 0.5    # x of the base


@dataclass
class _Conf(_Base):
    x: float = 0.25
    y: list[int] = field(  # the y, on the first line
        default_factory=lambda: [1, 2])
    z: typing.Literal["p", "q"] = "q"
    w: str | None = None   # maybe
    inner: _Inner = field(default_factory=_Inner)
    many: list[_Inner] = field(default_factory=list)   # several


def test_keys_types_defaults_and_meanings_from_the_source():
    assert config_keys(_Conf) == [
        KeyDoc("x", "float", "0.25", "x of the base"),            # inherited comment, own default
        KeyDoc("y", "list[int]", "[1, 2]", "the y, on the first line"),
        KeyDoc("z", "p|q", "q", ""),
        KeyDoc("w", "str or null", "null", "maybe"),
        KeyDoc("inner", "mapping", "see below", "Inner section."),   # the class docstring
        KeyDoc("inner.a", "int", "1", "the a"),
        KeyDoc("inner.b", "str", '""', ""),
        KeyDoc("many", "list[mapping]", "[]", "several"),
        KeyDoc("many[].a", "int", "1", "the a"),
        KeyDoc("many[].b", "str", '""', ""),
    ]
    text = help_text(_Conf).splitlines()
    assert text[1].split() == ["x", "float", "=", "0.25", "#", "x", "of", "the", "base"]
    assert text[3].split() == ["z", "p|q", "=", "q"]


def test_cli_help_and_stage_list():
    """Two subprocesses; neither imports torch (tests/core/test_cli_imports.py), so they take a second."""
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "dass.search", "--help"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "evolution.p_mutate" in out.stdout and "budget.macs" in out.stdout
    out = subprocess.run([sys.executable, "-m", "dass"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    listed = [ln.split()[0] for ln in out.stdout.splitlines()[1:1 + len(STAGES)]]
    assert listed == list(STAGES)
    assert len(out.stdout.splitlines()) == 1 + len(STAGES)  # the stages, nothing else (no alias names)
    assert dict(describe())["pipeline"] in out.stdout
