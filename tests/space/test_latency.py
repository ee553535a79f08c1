"""Latency budgets: the space's latency model (lookup table or regression, cached per machine and
setting), the budget filter, the re-measure-and-replace of picks, the config errors and the report
column. No test times anything: measurements are replaced by functions of known values where a
value is checked (the benchmark is bench/latency_model.py)."""
from __future__ import annotations

import csv
import itertools
import json
import math

import pytest
import torch

from dass import config as cfgmod
from dass.errors import DassError
from dass.pipeline.config import BudgetConfig, PipelineConfig
from dass.pipeline.report import within
from dass.search.budget import Budget, measured_picks
from dass.search.config import SearchConfig
from dass.space import Arch, LatencyConfig, SpaceConfig, params
from dass.space import latency as lat
from synthetic_db import NUM_CLASSES
# fixtures: an npy dataset and a predictor of TINY
from pipeline.test_pipeline import fixtures as pipeline_fixtures  # noqa: F401
# fixtures: a teacher and a predictor of known scores
from search.test_search import files, run, space, weights  # noqa: F401

FAST = dict(warmup=0, repeats=2, rounds=1)
MICRO = SpaceConfig(name="micro", stage_widths=[4, 8], stage_strides=[1, 2], depths=[1, 2], width_mults=[0.5, 1.0],
                    image_size=8, in_channels=3, num_classes=5)


def every_arch(space: SpaceConfig):
    per_stage = [[ws for d in space.depths for ws in itertools.product(space.width_choices[s], repeat=d)]
                 for s in range(space.num_stages)]
    for combo in itertools.product(*per_stage):
        yield Arch(tuple(len(ws) for ws in combo), combo)


def fake_measure_ms(module, x, cfg):
    """A 'latency' of 1 us per parameter: the table's parts then sum to the whole network's."""
    return 1e-3 * sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("model", ["lut", "regression"])
def test_model_predicts_finite_positive_ms(model, tmp_path):
    m = lat.latency_model(MICRO, 5, LatencyConfig(model=model, cache_dir=str(tmp_path), **FAST))
    for a in list(every_arch(MICRO))[::7]:
        v = m.predict_ms(a)
        assert math.isfinite(v) and v > 0


def test_table_covers_every_architecture_and_names_its_blocks():
    entries = set(lat.table_entries(MICRO))
    for a in every_arch(MICRO):
        assert set(lat.block_keys(a, MICRO)) <= entries
    # by hand: stem 4 ch at 8 px; stage 1 (stride 1): 4 -> 2 -> 4 at 8 px; stage 2 (stride 2): 4 -> 8 from 8 px
    a = Arch((2, 1), ((2, 4), (8,)))
    assert lat.block_keys(a, MICRO) == ["stem", "block:4:2:1:8", "block:2:4:1:8", "block:4:8:2:8", "head:8"]


def test_lookup_table_sums_its_parts(monkeypatch, tmp_path):
    """With 1 us per parameter, a student's table sum is its parameter count (the formula of
    dass.space.cost) in us, and the offset (whole minus parts) is 0."""
    monkeypatch.setattr(lat, "measure_ms", fake_measure_ms)
    m = lat.latency_model(MICRO, 5, LatencyConfig(cache_dir=str(tmp_path), **FAST))
    assert m.data["offset_ms"] == pytest.approx(0.0, abs=1e-9)
    for a in every_arch(MICRO):
        assert m.predict_ms(a) == pytest.approx(1e-3 * params(a, MICRO, 5))


def test_cache_is_keyed_written_atomically_and_reused(monkeypatch, tmp_path):
    calls, writes = [], []
    monkeypatch.setattr(lat, "measure_ms", lambda *a: calls.append(1) or 0.5)
    real_write = lat.atomic_write_json
    monkeypatch.setattr(lat, "atomic_write_json", lambda path, obj: writes.append(path) or real_write(path, obj))
    cfg = LatencyConfig(cache_dir=str(tmp_path), threads=1, **FAST)
    first = lat.latency_model(MICRO, 5, cfg)
    n = len(calls)
    assert n == len(lat.table_entries(MICRO)) + lat.OFFSET_STUDENTS and writes == [first.path]
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.path.name]   # no temp file left
    again = lat.latency_model(MICRO, 5, cfg)
    assert len(calls) == n and len(writes) == 1 and again.data == first.data     # read, not measured
    others = {lat.cache_file(MICRO, 5, LatencyConfig(cache_dir=str(tmp_path), **FAST, **kw))
              for kw in ({"threads": 1}, {"threads": 2}, {"threads": 1, "batch_size": 4},
                         {"threads": 1, "model": "regression"})}
    assert len(others) == 4 and first.path in others
    assert lat.cache_file(MICRO, 6, cfg) != first.path      # the classes too (the head's size)


def test_zero_threads_means_the_current_count(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    assert lat.cache_key(MICRO, 5, LatencyConfig())["threads"] == 3
    assert lat.cache_key(MICRO, 5, LatencyConfig(threads=1))["threads"] == 1


class HandModel:
    """A latency model whose predictions are given by hand."""
    setting = "by hand"

    def __init__(self, ms: dict):
        self.ms = ms

    def predict_ms(self, arch):
        return self.ms[arch]


def test_latency_budget_filters_candidates():
    pool = list(every_arch(MICRO))[:4]
    ms = dict(zip(pool, [0.8, 1.2, 1.0, 3.0]))
    budget = Budget(MICRO, 5, max_latency_ms=1.0, latency=HandModel(ms))
    assert [budget.accepts(a) for a in pool] == [True, False, True, False]   # <= 1.0 passes
    both = Budget(MICRO, 5, max_params=params(pool[0], MICRO, 5), max_latency_ms=1.0, latency=HandModel(ms))
    expected = [params(a, MICRO, 5) <= params(pool[0], MICRO, 5) and ms[a] <= 1.0 for a in pool]
    assert [both.accepts(a) for a in pool] == expected


def test_latency_budget_below_the_smallest_student_is_refused():
    smallest = Arch((1, 1), ((2,), (4,)))
    budget = Budget(MICRO, 5, max_latency_ms=0.5, latency=HandModel({smallest: 0.6}))
    with pytest.raises(DassError, match="budget.latency_ms=0.5"):
        budget.check_feasible()


def test_picks_over_budget_when_measured_are_replaced_in_rank_order():
    ranked = ["a", "b", "c", "d", "e", "f"]
    measured = {"a": 0.9, "b": 1.3, "c": 1.1, "d": 1.2, "e": 0.5, "f": 0.1}
    seen = []
    kept, got = measured_picks(ranked, 3, lambda x: seen.append(x) or measured[x], limit_ms=1.0, tolerance=0.15)
    # threshold 1.15: a kept, b (1.3) out, c (1.1) kept, d (1.2) out, e kept; f never measured
    assert kept == [0, 2, 4] and seen == ["a", "b", "c", "d", "e"]
    assert got == {i: measured[x] for i, x in enumerate(ranked[:5])}
    with pytest.raises(DassError, match="budget.latency_ms=0.01"):
        measured_picks(ranked, 2, measured.get, limit_ms=0.01, tolerance=0.0)


def test_search_filters_by_predicted_latency_and_replaces_measured_picks(files, space, monkeypatch,  # noqa: F811
                                                                        tmp_path):
    monkeypatch.setattr(lat, "measure_ms", fake_measure_ms)    # predicted = 1 us x parameters (test above)
    sizes = sorted(params(a, space, NUM_CLASSES) for a in list(every_arch(space))[::97])
    limit = 1e-3 * sizes[len(sizes) // 2]
    order = []

    def measured(arch, space_, num_classes, cfg):   # the second one measured is far over budget: replaced
        order.append(arch)
        ms = 1e-3 * params(arch, space_, num_classes)
        return 2 * ms + limit if len(order) == 2 else ms
    monkeypatch.setattr("dass.search.searcher.measure_arch", measured)
    cfg = cfgmod.load(SearchConfig, None, [f"teacher={files['teacher']}", f"predictor={files['predictor']}",
                                           f"run_dir={tmp_path / 'run'}", "progress=false", "device=cpu",
                                           "pool_size=60", "top_k=3", f"budget.latency_ms={limit}",
                                           f"latency.cache_dir={tmp_path / 'cache'}"])
    top = run(cfg)
    with open(tmp_path / "run" / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60
    for r in rows:
        predicted = 1e-3 * params(Arch.from_dict(json.loads(r["arch"])), space, NUM_CLASSES)
        assert float(r["latency_ms"]) == pytest.approx(predicted, abs=1e-4) and predicted <= limit
    ranked = [Arch.from_dict(json.loads(r["arch"])) for r in rows]
    assert order == ranked[:4]                                     # measured best first, one extra for the one out
    assert [p["rank"] for p in top["top"]] == [1, 3, 4] and top["latency"]["replaced_ranks"] == [2]
    assert [float(rows[i]["latency_ms_measured"]) for i in (0, 2, 3)] == [p["latency_ms_measured"] for p in top["top"]]
    assert rows[4]["latency_ms_measured"] == ""                    # not a pick: not measured
    assert top["budget"]["max_latency_ms"] == limit


@pytest.mark.parametrize("value", ["-1", "0", ".nan", ".inf"])
@pytest.mark.parametrize("cls", [PipelineConfig, SearchConfig])
def test_bad_latency_budget_is_an_error_naming_the_key(cls, value):
    with pytest.raises(DassError, match="latency_ms"):
        cfgmod.load(cls, None, [f"budget.latency_ms={value}"])


def test_bad_latency_budget_in_code_is_an_error_naming_the_key():
    for v in (-2.0, float("nan")):
        with pytest.raises(DassError, match="budget.latency_ms"):
            BudgetConfig(latency_ms=v)


def test_latency_alone_is_a_budget_and_the_default_macs_can_be_dropped():
    PipelineConfig(dataset="glyphs/ogham", budget=BudgetConfig(latency_ms=5)).check()
    cfg = cfgmod.load(PipelineConfig, "configs/pipeline/cpu.yaml",
                      ["dataset=glyphs/ogham", "budget.latency_ms=5", "budget.macs=null"])
    cfg.check()
    assert (cfg.budget.macs, cfg.budget.latency_ms) == (None, 5)
    default = cfgmod.load(PipelineConfig, "configs/pipeline/cpu.yaml", ["dataset=glyphs/ogham", "budget.latency_ms=5"])
    assert (default.budget.macs, default.budget.latency_ms) == (0.5, 5)   # both apply


def test_report_within_budget_uses_the_measured_latency_and_tolerance():
    budget = {"max_macs": 100, "max_params": None, "max_latency_ms": 1.0}
    row = {"macs": 50, "params": 7, "latency_ms": 0.9}
    assert not within({**row, "latency_ms_measured": None}, budget, 0.15)
    assert within({**row, "latency_ms_measured": 1.1}, budget, 0.15)
    assert not within({**row, "latency_ms_measured": 1.2}, budget, 0.15)
    assert within({**row, "latency_ms_measured": 5.0}, {"max_macs": 100, "max_params": None}, 0.0)


def test_cpu_clock_needs_one_cpu_thread_and_keys_its_own_table(tmp_path):
    for bad in ({"clock": "cpu"}, {"clock": "cpu", "threads": 2}, {"clock": "cpu", "threads": 1, "device": "cuda"},
                {"clock": "sundial"}):
        with pytest.raises(DassError, match="latency.clock"):
            LatencyConfig(**bad)
    wall, cpu = (lat.cache_file(MICRO, 5, LatencyConfig(cache_dir=str(tmp_path), threads=1, clock=c))
                 for c in ("wall", "cpu"))
    assert wall != cpu


@pytest.mark.slow
def test_pipeline_latency_only_budget_reports_predicted_and_measured(pipeline_fixtures, monkeypatch, tmp_path):
    """budget.latency_ms alone (budget.macs=null): the picks pass the predicted latency, the first
    measured over budget is replaced by the next, and report.md / picks.csv show both latencies."""
    from dass.pipeline import run as pipeline_run
    from pipeline.test_pipeline import CLASSES, TINY, _cfg, _teacher
    root, pred = pipeline_fixtures
    monkeypatch.setattr(lat, "measure_ms", fake_measure_ms)    # predicted = 1 us x parameters
    sizes = sorted(params(a, TINY, CLASSES) for a in list(every_arch(TINY))[::97])
    limit = 1e-3 * sizes[len(sizes) // 2]
    calls = []

    def measured(arch, space_, num_classes, cfg):   # the first candidate measured is 3x over budget
        calls.append(arch)
        return 3 * limit if len(calls) == 1 else 1e-3 * params(arch, space_, num_classes)
    monkeypatch.setattr("dass.search.searcher.measure_arch", measured)
    out = tmp_path / "run"
    result = pipeline_run(_cfg(f"dataset=npy:{root / 'arrays'}", f"teacher={_teacher(root, pred)}",
                               f"predictor={pred}", f"run_dir={out}", "budget.macs=null",
                               f"budget.latency_ms={limit}", f"latency.cache_dir={tmp_path / 'cache'}", "seeds=[1]"))
    assert result["budget"]["max_macs"] is None and result["budget"]["max_latency_ms"] == limit
    with open(out / "picks.csv") as f:
        picks = list(csv.DictReader(f))
    assert [int(p["rank"]) for p in picks] == [2, 3]                    # rank 1 measured over budget: replaced
    for p in picks:
        arch_params = int(p["params"])
        assert float(p["latency_ms"]) == pytest.approx(1e-3 * arch_params, abs=1e-4)
        assert 1e-3 * arch_params <= limit
        assert float(p["latency_ms_measured"]) == pytest.approx(1e-3 * arch_params, abs=1e-4)
        assert p["within_budget"] == "True"
    report = (out / "report.md").read_text()
    assert "latency ms (predicted / measured)" in report and f"latency {limit:g} ms" in report
    assert "candidates of rank 1 measured over it and replaced" in report
