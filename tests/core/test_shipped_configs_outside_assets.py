"""Shipped configs never write into ``assets/`` unless the user names it: every output folder of
every YAML under ``configs/`` resolves outside the repository's ``assets/``, and the shipped proxy
cache is only read."""
from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from dass.config import load

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"

# config folder -> (config class, keys where the stage writes, path-like keys it only reads)
STAGES = {
    "data": ("dass.data.glyphs:GlyphsConfig", {"out_root"}, set()),
    "teacher": ("dass.teacher.config:TeacherRunConfig", {"run_dir", "runs_root"}, {"data_root"}),
    "database": ("dass.database.config:DatabaseConfig", {"out", "work_dir"},
                 {"data_root", "teachers_dir"}),   # teachers_dir: reused read-only unless out is in assets/ (builder)
    "predictor": ("dass.predictor.config:MetaTrainConfig", {"run_dir", "proxy_cache"},
                  {"data_root", "proxy_read_only_caches"}),
    "search": ("dass.search.config:SearchConfig", {"run_dir", "latency.cache_dir"}, {"data_root"}),
    "kd": ("dass.kd.config:KDRunConfig", {"run_dir", "runs_root"}, {"data_root"}),
    "export": ("dass.export.config:ExportConfig", {"out"}, {"data_root"}),
    "evaluation": ("dass.evaluation.config:EvaluationConfig", {"run_dir", "proxy.cache"},
                   {"data_root", "proxy.read_only_caches"}),
    "pipeline": ("dass.pipeline.config:PipelineConfig", {"run_dir", "latency.cache_dir"}, {"data_root"}),
}


def _cls(spec: str):
    mod, name = spec.split(":")
    return getattr(importlib.import_module(mod), name)


def _flat(obj, prefix=""):
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            yield from _flat(v, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", v


def _path_like(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return leaf.endswith(("_dir", "_root", "cache", "caches")) or leaf in ("out", "out_root")


def _configs():
    for folder in sorted((ROOT / "configs").iterdir()):
        for path in sorted(folder.glob("*.yaml")):
            if folder.name in STAGES and folder.name != "space":
                yield pytest.param(folder.name, path, id=f"{folder.name}/{path.name}")


def test_every_config_folder_with_a_stage_is_covered():
    folders = {p.name for p in (ROOT / "configs").iterdir() if p.is_dir()}
    assert folders - {"space"} <= set(STAGES), folders - set(STAGES)


@pytest.mark.parametrize("stage,path", list(_configs()))
def test_a_shipped_config_writes_nowhere_under_assets(stage, path):
    cls, writes, reads = STAGES[stage]
    cfg = load(_cls(cls), str(path), [])
    values = dict(_flat(cfg))
    unclassified = [k for k, v in values.items() if _path_like(k) and not isinstance(v, bool) and k not in writes | reads]
    assert not unclassified, f"{path.name}: classify {unclassified} as written or read (this test)"
    for key in writes:
        v = values.get(key)
        if v:
            assert not (ROOT / str(v)).resolve().is_relative_to(ASSETS), f"{path.name}: {key}={v} lies in assets/"


def test_the_read_only_proxy_cache_is_read_and_never_written(tmp_path):
    from dass.proxies.cache import ProxyCache
    shipped, own = tmp_path / "shipped", tmp_path / "own"
    ProxyCache(shipped).put("t-naswot", "ab" * 32, [1.0, 2.0, float("nan")])
    before = {p.name: p.read_bytes() for p in shipped.iterdir()}
    cache = ProxyCache(own, read_only=[shipped])
    got = cache.get("t-naswot", "ab" * 32, 3)
    assert got[:2].tolist() == [1.0, 2.0] and np.isnan(got[2]) and cache.hits == 1
    assert cache.get("t-naswot", "cd" * 32, 3) is None and cache.misses == 1
    cache.put("t-naswot", "cd" * 32, [5.0, 6.0, 7.0])
    assert {p.name: p.read_bytes() for p in shipped.iterdir()} == before          # untouched
    [entry] = list(own.iterdir())
    assert json.loads(entry.read_text())["values"] == [5.0, 6.0, 7.0]
    reader = ProxyCache("", read_only=[shipped])      # no writable folder: puts are dropped
    reader.put("t-naswot", "ef" * 32, [1.0, 1.0, 1.0])
    assert {p.name for p in shipped.iterdir()} == set(before) and not (tmp_path / "ef").exists()
