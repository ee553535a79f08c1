"""Property: any value for any numeric config key of any entry module ends in exit 0 or 2, never 1.

Every ``int``/``float`` key (and list of them) of the configs of ``dass.kd``, ``dass.teacher``,
``dass.search``, ``dass.predictor``, ``dass.evaluation``, ``dass.database``, ``dass.pipeline``,
``dass.space`` and ``dass.data glyphs`` is overridden with hostile values (wrong types, NaN, infinities, numbers beyond
int64, huge, negative, zero, empty) on top of a tiny valid run (one epoch / one episode / four
candidates on the fixtures of ``test_bad_input``), in process through the entry's error boundary
(``dass.cli.run_main``). A value that is accepted must run to the end (exit 0); one that is refused
must be a user error (exit 2); an escaping exception (what exit 1 would be) fails the test.
Every value is tried on every key, one ``slow`` test per key (the fast suite keeps the base runs):
the keys of ``dass.pipeline`` in ``test_config_fuzz_pipeline.py`` (its accepted values each run the
whole tiny pipeline: most of the sweep's time, in a file of its own so that the other xdist worker
(``--dist loadfile``) can take the rest), the others here.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import pytest
import yaml

from assets.tiny_db import write_tiny_db
from core.test_bad_input import K, STUDENT, make_files

VALUES = ["abc", ".nan", "nan", ".inf", "-.inf", "1e400", str(10 ** 30), str(2 ** 62), "-1", str(-2 ** 62), "",
          "0", "[]", "null", "0.5"]
LIST_VALUES = ["[.nan]", f"[{2 ** 62}]", "[-1]", "[1e400]", "[abc]"]


def numeric_keys(cls, prefix: str = "") -> list[tuple[str, bool]]:
    """``(dotted key, is a list)`` of every int/float field of dataclass ``cls``, nested ones included."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            out += numeric_keys(tp, f"{prefix}{f.name}.")
        elif tp in (int, float):
            out.append((prefix + f.name, False))
        elif origin in (list, tuple) and args and args[0] in (int, float):
            out.append((prefix + f.name, True))
    return out


def _configs():
    from dass.data.glyph_config import GlyphsConfig
    from dass.database.config import DatabaseConfig
    from dass.evaluation import EvaluationConfig
    from dass.kd import KDRunConfig
    from dass.predictor import MetaTrainConfig
    from dass.pipeline import PipelineConfig
    from dass.search import SearchConfig
    from dass.space import SpaceConfig
    from dass.teacher import TeacherRunConfig
    return {"kd": KDRunConfig, "teacher": TeacherRunConfig, "search": SearchConfig,
            "predictor": MetaTrainConfig, "evaluation": EvaluationConfig, "database": DatabaseConfig,
            "space": SpaceConfig, "glyphs": GlyphsConfig, "pipeline": PipelineConfig}


CONFIGS = _configs()
KEYS = [(name, key, is_list) for name, cls in CONFIGS.items() for key, is_list in numeric_keys(cls)]


PIPELINE = [k for k in KEYS if k[0] == "pipeline"]   # swept in test_config_fuzz_pipeline.py
HERE = [k for k in KEYS if k[0] != "pipeline"]


def cases_of(keys) -> list[tuple[str, str, str]]:
    """``(entry, key, value)``: every hostile value on each ``(entry, key, is a list)`` of ``keys``."""
    return [(name, key, v) for name, key, is_list in keys for v in VALUES + (LIST_VALUES if is_list else [])]


def per_key(keys):
    """``keys`` as pytest parameters, one test per key: xdist (``--dist loadfile``) sends the files with
    the most tests first, so the sweeps start early instead of ending the run on one worker."""
    return pytest.mark.parametrize("entry_key", [pytest.param(k, id=f"{k[0]}-{k[1]}") for k in keys])


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    f = make_files(root)
    write_tiny_db(root / "mt", tasks=(("dtd", "meta_train"), ("cub", "meta_valid")), n_students=4, num_classes=K)
    f["mt_db"] = str(root / "mt" / "db")
    build = {"space": f["space"], "data_root": f["data"], "out": str(root / "bd" / "db"),
             "work_dir": str(root / "bd"), "device": "cpu",
             "tasks": [{"dataset": "glyphs/good", "split": "meta_train", "teacher": f["teacher"]}]}
    f["build_cfg"] = str(root / "build.yaml")
    Path(f["build_cfg"]).write_text(yaml.safe_dump(build))
    glyphs = {"out_root": str(root / "glyphs_out"), "image_size": 8, "train_per_class": 1, "test_per_class": 1,
              "workers": 1, "datasets": [{"name": "two", "fonts": ["{mpl}/DejaVuSans.ttf"],
                                          "code_points": ["0x41-0x42"], "max_classes": 2}]}
    f["glyphs_cfg"] = str(root / "glyphs.yaml")
    Path(f["glyphs_cfg"]).write_text(yaml.safe_dump(glyphs))
    f["root"] = str(root)
    return f


def argv_of(name: str, f: dict, run_dir: str) -> tuple[str, list[str]]:
    """(module, argv) of a tiny valid run of entry ``name``."""
    if name == "kd":
        return "kd", [f"teacher={f['teacher']}", "dataset=glyphs/good", f"data_root={f['data']}", *STUDENT,
                      "kd_recipe.epochs=1", "kd_recipe.batch_size=5", "kd_recipe.eval_batch_size=5", "progress=false",
                      "device=cpu", f"run_dir={run_dir}"]
    if name == "teacher":
        return "teacher", ["dataset=glyphs/good", f"data_root={f['data']}", f"space={f['space']}",
                           "teacher_recipe.epochs=1", "teacher_recipe.batch_size=5", "teacher_recipe.eval_batch_size=5",
                           "progress=false", "device=cpu", f"run_dir={run_dir}"]
    if name == "search":
        return "search", [f"teacher={f['teacher']}", f"predictor={f['predictor']}", "pool_size=4",
                          "progress=false", "device=cpu", f"run_dir={run_dir}"]
    if name == "predictor":
        return "predictor", [f"db={f['mt_db']}", "episodes=1", "progress=false", "device=cpu",
                             f"run_dir={run_dir}"]
    if name == "evaluation":
        return "evaluation", [f"db={f['db']}", "methods=[random,macs]", "plots=false", "progress=false",
                              "device=cpu", f"run_dir={run_dir}"]
    if name == "database":
        return "database", ["--config", f["build_cfg"], "--phase", "teachers", f"work_dir={run_dir}"]
    if name == "pipeline":
        return "pipeline", ["dataset=glyphs/good", f"data_root={f['data']}", f"teacher={f['teacher']}",
                            f"predictor={f['predictor']}", "budget.macs=0.9", "top_k=1", "pool_size=4",
                            "kd_recipe.epochs=1", "kd_recipe.batch_size=5", "kd_recipe.eval_batch_size=5",
                            "progress=false", "device=cpu", f"run_dir={run_dir}"]
    if name == "space":
        return "space", ["--config", f["space"], "--describe"]
    assert name == "glyphs"
    return "data", ["glyphs", "--config", f["glyphs_cfg"], "--quiet", f"out_root={run_dir}"]


def call(module: str, argv: list[str]) -> int:
    """The entry's main through ``run_main``; returns the exit code (an escaping exception fails)."""
    import importlib

    from dass.cli import make_parser, run_main
    mod = importlib.import_module(f"dass.{module}.__main__")  # every stage is a package
    if module == "evaluation":
        main, parser = mod.main, make_parser("python -m dass.evaluation", "")
    elif module == "data":
        main, parser = (lambda a: a.fn(a)), mod._parser()
    else:
        main, parser = mod.main, mod._parser()
    try:
        run_main(main, argv, parser)
    except SystemExit as e:
        return int(e.code or 0)
    raise AssertionError("run_main returned without exiting")


def check(cases, fx, tmp_path, monkeypatch):
    monkeypatch.setenv("DASS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    bad = []
    for i, (name, key, value) in enumerate(cases):
        module, argv = argv_of(name, fx, str(tmp_path / f"run{i}"))
        override = f"{key}={value}"
        try:
            code = call(module, [*argv, override])
        except Exception as e:  # what the user would see as a traceback and exit code 1
            bad.append(f"{name} {override}: {type(e).__name__}: {str(e)[:200]}")
            continue
        if code not in (0, 2):
            bad.append(f"{name} {override}: exit {code}")
    assert not bad, "\n".join(bad)


def test_every_entry_has_numeric_keys():
    names = {n for n, _, _ in KEYS}
    assert names == set(CONFIGS)
    assert ("kd", "kd_recipe.temperature", False) in KEYS and ("kd", "seeds", True) in KEYS
    assert ("predictor", "model.set_heads", False) in KEYS and ("search", "budget.macs", False) in KEYS
    # the two sweeps (here and test_config_fuzz_pipeline.py) together try every value on every key
    assert sorted(HERE + PIPELINE) == sorted(KEYS) and len(set(KEYS)) == len(KEYS)
    assert len(cases_of(KEYS)) == sum(len(VALUES) + len(LIST_VALUES) * is_list for _, _, is_list in KEYS)


@pytest.mark.slow
def test_the_base_runs_are_valid(fx, tmp_path, monkeypatch, capsys):
    """Without an override each tiny run ends with exit 0 (so a 2 below comes from the value)."""
    monkeypatch.setenv("DASS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    for name in CONFIGS:
        code = call(*argv_of(name, fx, str(tmp_path / name)))
        assert code == 0, (name, capsys.readouterr().err[-2000:])


@pytest.mark.slow  # the fast suite keeps the base runs and tests/core/test_reliability.py's range checks
@per_key(HERE)
def test_every_hostile_value_on_every_key_exits_0_or_2(entry_key, fx, tmp_path, monkeypatch):
    check(cases_of([entry_key]), fx, tmp_path, monkeypatch)
