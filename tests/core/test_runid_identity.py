"""One run-identity mechanism (dass.runid): every stage config class names the keys outside its
identity in ``IDENTITY_FREE`` (dotted, next to its fields) and ``runid.identity(kind, cfg, **inputs)``
reads it. The hashes are pinned against the values of the code before that mechanism, so run folders
written before it are still recognised."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from dass import runid
from dass.config import to_dict
from dass.database.config import DatabaseConfig
from dass.evaluation.config import EvaluationConfig
from dass.hashing import json_sha256
from dass.kd.config import KDRunConfig
from dass.predictor.config import MetaTrainConfig
from dass.search.config import SearchConfig
from dass.teacher.config import TeacherRunConfig

DASS = Path(__file__).resolve().parents[2] / "dass"

# run kind -> the config class of the stage that claims such runs
STAGE_CONFIGS = {"teacher": TeacherRunConfig, "kd": KDRunConfig, "search": SearchConfig,
                 "predictor": MetaTrainConfig, "database": DatabaseConfig, "evaluation": EvaluationConfig}
# kinds whose identity is a plain dict (the pipeline: the dataset; each stage folder has its own identity)
DICT_KINDS = {"pipeline"}

# Computed once at commit b420ddd (before IDENTITY_FREE moved onto the config classes), with
# runid.__version__ = "0.0-pin" and torch.__version__ = "2.0.0" as below, by
#   runid.identity(kind, to_dict(cfg), drop=OLD_DROP[kind], **inputs)["hash"]
# for each (cfg, inputs) of fixed_runs(), where OLD_DROP was: teacher the inline drop= of
# teacher/stage.py; kd and search their stage.py IDENTITY_FREE; predictor dass/predictor/meta_train its
# RESUMABLE_CHANGES + ("db",); database builder.py's BUILD_IDENTITY_FREE; evaluation the inline drop=
# of evaluation/stage.py (the stage.py modules are now teacher/training_run.py, kd/distil_student.py,
# search/searcher.py and evaluation/evaluate_tasks.py).
PINNED = {
    "teacher": "9f9041426253b3fe",
    "kd": "5e78571503017d56",
    "search": "ef9cf33bc004c11e",
    "predictor": "c153eba2db2badd9",
    "database": "555403f305a84c33",
    "evaluation": "07cc7b0048d0770b",
}


def fixed_runs():
    """kind -> (config, inputs): free keys set away from their defaults, so dropping them is exercised."""
    teacher = TeacherRunConfig(dataset="glyphs/hebrew", data_root="elsewhere", run_dir="r/t", device="cpu",
                               progress=False, seed=3)
    kd = KDRunConfig(teacher="t.pt", dataset="glyphs/hebrew", run_dir="r/kd", seeds=[1, 2], device="cpu",
                     progress=False, student_file="top.json", student_index=1)
    kd.kd_recipe.epochs = 7
    search = SearchConfig(teacher="t.pt", predictor="p.pt", run_dir="r/s", dataset="glyphs/hebrew",
                          data_root="data", pool_size=2000, strategy="evolution", progress=False)
    search.latency = dataclasses.replace(search.latency, cache_dir="cache")
    search.budget.macs = 0.5
    predictor = MetaTrainConfig(db="db", run_dir="r/p", episodes=40, checkpoint_every=5, proxies=["naswot"],
                                proxy_cache="pc", cost_prior=True)
    database = DatabaseConfig(out="o", work_dir="w", workers=2, label_seeds={"meta_test": [3, 4]}, remap="copy_paste_first")
    database.kd_recipe.epochs = 4
    evaluation = EvaluationConfig(db="db", run_dir="r/e", split="meta_valid", methods=["macs", "oracle"],
                                  predictors={"dass": "p.pt"}, plots=False)
    evaluation.proxy.cache = "pc"
    evaluation.search_kd.budgets = [0.3]
    files = {"teacher": "a" * 64, "predictor": "b" * 64}
    data = {"train": "c" * 64, "test": "d" * 64}
    return {
        "teacher": (teacher, {"space": {"name": "cpu"}, "data": data}),
        "kd": (kd, {"teacher": files["teacher"], "arch": {"depths": [1, 1], "widths": [8, 16]},
                    "space": {"name": "cpu"}, "data": data}),
        "search": (search, {"teacher": files["teacher"], "predictor": files["predictor"], "data": data,
                            "candidates": None}),
        "predictor": (predictor, {"db": {"task.pt": "e" * 64}}),
        "database": (database, {"space": {"name": "cpu"}}),
        "evaluation": (evaluation, {"db": {"task.pt": "e" * 64}, "predictors": {"dass": files["predictor"]},
                                    "teachers": {}}),
    }


@pytest.fixture
def pinned_versions(monkeypatch):
    """The code versions the identity records, fixed so that the pins do not follow the environment."""
    monkeypatch.setattr(runid, "__version__", "0.0-pin")
    monkeypatch.setattr(torch, "__version__", "2.0.0")


# Config keys renamed since the pins (one name for the KD and the teacher recipe in every stage,
# 2026-12-05): (old dotted prefix, new dotted prefix) per kind. The identity keeps every value; only
# these key names differ from the pinned one, which the test below proves by hashing the identity
# with the old names.
RENAMED = {"teacher": ("recipe.", "teacher_recipe."), "kd": ("recipe.", "kd_recipe."),
           "database": ("kd.", "kd_recipe."), "evaluation": ("search_kd.recipe", "search_kd.kd_recipe")}


def _with_old_names(kind: str, ident: dict) -> dict:
    parts = {k: v for k, v in ident.items() if k != "hash"}
    if kind in RENAMED:
        old, new = RENAMED[kind]
        renamed = {old + k[len(new):] if k.startswith(new) else k: v for k, v in parts["config"].items()}
        assert len(renamed) == len(parts["config"]) and renamed != parts["config"]
        parts["config"] = renamed
    return parts


@pytest.mark.parametrize("kind", sorted(STAGE_CONFIGS))
def test_identity_hash_unchanged(kind, pinned_versions):
    """The identity of a fixed run is the pinned one, up to the renamed keys."""
    cfg, inputs = fixed_runs()[kind]
    ident = runid.identity(kind, cfg, **inputs)
    assert json_sha256(_with_old_names(kind, ident), compact=False)[:16] == PINNED[kind]
    assert (ident["hash"] == PINNED[kind]) == (kind not in RENAMED)


def test_free_keys_change_nothing_and_others_do(pinned_versions):
    cfg, inputs = fixed_runs()["search"]
    base = runid.identity("search", cfg, **inputs)["hash"]
    moved = dataclasses.replace(cfg, run_dir="elsewhere", progress=True,
                                latency=dataclasses.replace(cfg.latency, cache_dir="c2"))
    assert runid.identity("search", moved, **inputs)["hash"] == base
    assert runid.identity("search", dataclasses.replace(cfg, pool_size=2001), **inputs)["hash"] != base
    # a dict is taken whole
    assert runid.identity("x", {"a": 1})["config"] == {"a": 1}


def _dotted_keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _dotted_keys(v, f"{prefix}{k}.")
    return out


@pytest.mark.parametrize("kind", sorted(STAGE_CONFIGS))
def test_identity_free_names_real_keys(kind):
    cls = STAGE_CONFIGS[kind]
    assert "IDENTITY_FREE" in vars(cls), f"{cls.__name__} declares no IDENTITY_FREE"
    free = cls.IDENTITY_FREE
    assert isinstance(free, tuple) and free and len(set(free)) == len(free)
    assert "IDENTITY_FREE" not in {f.name for f in dataclasses.fields(cls)}   # a ClassVar, not a config key
    keys = _dotted_keys(to_dict(cls()))
    assert [k for k in free if k not in keys] == []


def _identity_calls():
    """(file, kind literal, keyword names) of every call of runid.identity in dass/."""
    for path in sorted(DASS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "identity"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "runid"):
                kind = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
                yield path.relative_to(DASS.parent), kind, [k.arg for k in node.keywords]


def test_every_identity_goes_through_a_stage_config():
    calls = list(_identity_calls())
    assert calls, "no runid.identity call found: has it been renamed?"
    for where, kind, keywords in calls:
        assert kind in STAGE_CONFIGS or kind in DICT_KINDS, f"{where}: identity of an unlisted kind {kind!r}"
        assert "drop" not in keywords, f"{where}: keys outside the identity belong in the config's IDENTITY_FREE"
    assert {k for _, k, _ in calls} == set(STAGE_CONFIGS) | DICT_KINDS


def test_added_keys_leave_the_identity_only_at_their_neutral_value():
    """IDENTITY_ADDED: a key added after runs existed is left out while it holds the value at which it
    changes nothing (the pinned hashes above hold), and counts as soon as it holds another."""
    base = MetaTrainConfig(db="d", run_dir="r")
    aware = dataclasses.replace(base, task_stats=["teacher_acc"])
    a, b = runid.identity("predictor", base), runid.identity("predictor", aware)
    assert "task_stats" not in a["config"] and b["config"]["task_stats"] == ["teacher_acc"]
    assert a["hash"] != b["hash"]
