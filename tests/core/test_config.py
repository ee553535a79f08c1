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


def test_a_section_base_takes_one_section_of_another_file_and_local_keys_win(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text("name: other\nblock:\n  inner: {lr: 0.5, steps: 9}\n")
    (tmp_path / "c.yaml").write_text("name: mine\ninner: {_base_: recipes/r.yaml#block.inner, steps: 2}\n")
    assert load(Outer, tmp_path / "c.yaml") == Outer(name="mine", inner=Inner(lr=0.5, steps=2))
    # an override still wins over both
    assert load(Outer, tmp_path / "c.yaml", ["inner.lr=0.25"]).inner == Inner(lr=0.25, steps=2)


@pytest.mark.parametrize("ref, message", [
    ("recipes/r.yaml#block.nowhere", "has no section 'block.nowhere'"),
    ("recipes/r.yaml#name", "section 'name' of"),          # a string, not a mapping
    ("#block", "expects a file name"),
    ("recipes/missing.yaml#block", "config file not found"),
])
def test_a_bad_section_base_is_one_error_naming_the_key(tmp_path, ref, message):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text("name: other\nblock:\n  inner: {lr: 0.5}\n")
    (tmp_path / "c.yaml").write_text(f"inner: {{_base_: '{ref}'}}\n")
    with pytest.raises(DassError, match=message):
        load(Outer, tmp_path / "c.yaml")


def test_a_section_base_of_its_own_file_is_a_cycle(tmp_path):
    (tmp_path / "c.yaml").write_text("block: {lr: 0.5}\ninner: {_base_: 'c.yaml#block'}\n")
    with pytest.raises(DassError, match="loops back to itself"):
        load(Outer, tmp_path / "c.yaml")


def test_an_edit_in_a_recipe_file_reaches_every_profile_that_names_it(tmp_path):
    """The cpu KD and teacher recipes live once (configs/kd, configs/teacher); the database and the
    pipeline profiles reference them. Edit the recipe files of a copy of configs/: all three see it."""
    import shutil
    from pathlib import Path

    from dass.database.config import DatabaseConfig
    from dass.kd.config import KDRunConfig
    from dass.pipeline.config import PipelineConfig
    from dass.teacher.config import TeacherRunConfig
    root = Path(__file__).resolve().parents[2] / "configs"
    shutil.copytree(root, tmp_path / "configs")
    kd, teacher = tmp_path / "configs" / "kd" / "cpu.yaml", tmp_path / "configs" / "teacher" / "cpu.yaml"
    kd.write_text(kd.read_text().replace("  lr: 0.05\n", "  lr: 0.07\n", 1))
    teacher.write_text(teacher.read_text().replace("  epochs: 60\n", "  epochs: 61\n", 1))
    db = load(DatabaseConfig, tmp_path / "configs" / "database" / "cpu.yaml")
    pipe = load(PipelineConfig, tmp_path / "configs" / "pipeline" / "cpu.yaml")
    assert load(KDRunConfig, kd).kd_recipe.lr == db.kd_recipe.lr == pipe.kd_recipe.lr == 0.07
    # the database keeps its ranking schedule beside the reference; the final students train longer
    assert db.kd_recipe.epochs == 10 and pipe.kd_recipe.epochs == load(KDRunConfig, kd).kd_recipe.epochs == 40
    assert load(TeacherRunConfig, teacher).teacher_recipe.epochs == db.teacher_recipe.epochs == pipe.teacher_recipe.epochs == 61
