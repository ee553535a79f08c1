"""Config system: typed loading, overrides, one-line errors naming key and file."""
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from dass.config import load, parse_overrides
from dass.errors import DassError


@dataclass
class Inner:
    lr: float = 0.1
    steps: int = 3


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    budget: int | None = None


def test_load_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: a\ninner:\n  lr: 1\ntags: [p, q]\n")
    c = load(Outer, f, ["inner.steps=7", "budget=100"])
    assert c == Outer(name="a", inner=Inner(lr=1.0, steps=7), tags=["p", "q"], budget=100)


def test_unknown_key_names_key_and_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("inner:\n  lrr: 1\n")
    with pytest.raises(DassError, match=r"c\.yaml.*'inner\.lrr'"):
        load(Outer, f)


def test_ill_typed_value(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("inner:\n  steps: many\n")
    with pytest.raises(DassError, match=r"c\.yaml.*'inner\.steps' expects int"):
        load(Outer, f)
    with pytest.raises(DassError, match="'budget'"):
        load(Outer, None, ["budget=[1]"])


def test_override_syntax():
    assert parse_overrides(["a.b=3", "c=[1, 2]", "d=text"]) == {"a": {"b": 3}, "c": [1, 2], "d": "text"}
    with pytest.raises(DassError):
        parse_overrides(["novalue"])


@pytest.mark.slow
def test_entry_module_exits_2_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dass.space", "--config", "configs/space/paper.yaml", "depths=[0,1]"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "depths" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "dass.space", "--config", str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "missing.yaml" in r.stderr


def test_describe_prints_facts(capsys):
    import json

    from dass.cli import run_main
    from dass.space import __main__ as space_cli
    with pytest.raises(SystemExit) as e:  # in process: the command's torch import is already paid for
        run_main(space_cli.main, ["--config", "configs/space/paper.yaml", "--describe"], space_cli._parser())
    assert e.value.code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["num_architectures"] == 66429 ** 4
    assert d["onehot_dim"] == 200 and d["teacher"]["layers"] == 42
    assert d["teacher_params"] > 0 and d["teacher_macs"] > 0
