"""Search: budgets, ranking order, candidate files, evolution, and the task inputs it reads from the dataset
(the task-level computations themselves: tests/core/test_task.py)."""
from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dass import config as cfgmod
from dass.data.arrays import ImageArrays, write_split
from dass.errors import DassError
from dass.io import atomic_torch_save
from dass.predictor import InputDims, LoadedPredictor, Predictor, PredictorConfig, save_predictor
from dass.search import SearchConfig, run
from dass.space import (Arch, ResNet, macs, onehot, onehot_dim, params, sample_unique,
                        teacher_arch)
from synthetic_db import NUM_CLASSES, random_teacher_sd, teacher_net, tiny_space

ROOT = Path(__file__).resolve().parents[2]


def all_archs(space):
    """Every architecture of the space, by brute force (20,736 for the tiny space)."""
    per_stage = []
    for s in range(space.num_stages):
        opts = []
        for d in space.depths:
            opts += [ws for ws in itertools.product(space.width_choices[s], repeat=d)]
        per_stage.append(opts)
    for combo in itertools.product(*per_stage):
        yield Arch(tuple(len(ws) for ws in combo), combo)


@pytest.fixture(scope="module")
def space():
    return tiny_space()


@pytest.fixture(scope="module")
def least(space):
    """Smallest MACs and parameter count over the whole space, by enumeration."""
    m = p = float("inf")
    for a in all_archs(space):
        m = min(m, macs(a, space, NUM_CLASSES))
        p = min(p, params(a, space, NUM_CLASSES))
    return m, p


@pytest.fixture(scope="module")
def weights(space):
    return torch.from_numpy(np.random.default_rng(7).uniform(0, 1, onehot_dim(space))).float()


@pytest.fixture(scope="module")
def files(tmp_path_factory, space, weights):
    """A teacher checkpoint and a predictor whose score is a known increasing function of w . onehot(arch).

    The predictor reads A only: its one-hot encoder puts ``w . x`` in feature 0, the head passes it
    through ``tanh(0.01 * .)`` and the output layer copies it; inner learning rates are 0, so
    adaptation leaves it unchanged.
    """
    root = tmp_path_factory.mktemp("search")
    teacher = root / "teacher.pt"
    atomic_torch_save({"state_dict": random_teacher_sd(space, 3), "space": cfgmod.to_dict(space),
                       "num_classes": NUM_CLASSES, "metrics": {"best_acc": 61.5}}, teacher)
    model = Predictor(PredictorConfig(InputDims.for_space(space), "A"))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.arch_enc.fc.weight[0] = weights
        model.hidden.weight[0, 0] = 0.01
        model.out.weight[0, 0] = 1.0
    lrs = {k: torch.zeros_like(v) for k, v in model.named_parameters()}
    pred = LoadedPredictor(model, lrs, space, {"kind": "raw", "label": "best_acc", "support_default": 0.0},
                           {"steps": 1, "first_order": False},
                           {"noise_seed": 0, "remap": "copy_paste_first", "dataset_feats": 0})
    save_predictor(pred, root / "best.pt")
    return {"teacher": teacher, "predictor": root / "best.pt", "root": root}


def search(files, run_dir, *extra):
    cfg = cfgmod.load(SearchConfig, None, [f"teacher={files['teacher']}", f"predictor={files['predictor']}",
                                           f"run_dir={run_dir}", "progress=false", "device=cpu", *extra])
    return run(cfg)


def read_scores(run_dir):
    with open(Path(run_dir) / "scores.csv") as f:
        return list(csv.DictReader(f))


def test_top_k_under_budget_in_score_order(files, space, weights, tmp_path):
    t = teacher_arch(space)
    budget_macs, budget_params = macs(t, space, NUM_CLASSES) // 2, params(t, space, NUM_CLASSES) // 2
    top = search(files, tmp_path, "pool_size=300", "top_k=5", f"budget.macs={budget_macs}",
                 f"budget.params={budget_params}")
    rows = read_scores(tmp_path)
    archs = [Arch.from_dict(json.loads(r["arch"])) for r in rows]
    assert len(set(archs)) == len(archs) == 300
    for a in archs:
        assert macs(a, space, NUM_CLASSES) <= budget_macs and params(a, space, NUM_CLASSES) <= budget_params
    # The expected order, from the known scoring function.
    key = {a: float(weights @ onehot(a, space)) for a in archs}
    expected = sorted(archs, key=lambda a: -key[a])[:5]
    got = [Arch.from_dict(r["arch"]) for r in top["top"]]
    assert got == expected
    assert [r["rank"] for r in top["top"]] == [1, 2, 3, 4, 5]
    for r, a in zip(top["top"], got):
        assert r["score"] == pytest.approx(np.tanh(0.01 * key[a]), abs=1e-6)
        assert r["pred_acc"] == pytest.approx(100 * r["score"], abs=1e-3)  # raw target: accuracy / 100
        assert r["macs"] == macs(a, space, NUM_CLASSES)
    on_disk = json.loads((tmp_path / "top.json").read_text())
    assert on_disk["top"] == top["top"] and on_disk["budget"] == {"max_macs": budget_macs, "max_params": budget_params}
    assert on_disk["teacher_acc"] == 61.5 and on_disk["seconds"] > 0


def test_a_budget_at_most_1_is_a_fraction_of_the_teachers_as_in_the_pipeline(files, space, tmp_path):
    t = teacher_arch(space)
    top = search(files, tmp_path, "pool_size=50", "budget.macs=0.5", "budget.params=0.25")
    assert top["budget"] == {"max_macs": 0.5 * macs(t, space, NUM_CLASSES),
                             "max_params": 0.25 * params(t, space, NUM_CLASSES)}
    assert all(r["macs"] <= 0.5 * macs(t, space, NUM_CLASSES) for r in top["top"])


def test_budget_at_the_smallest_architecture_finds_it(files, space, least, tmp_path):
    top = search(files, tmp_path, "pool_size=1", f"budget.macs={least[0]}")
    assert top["top"][0]["macs"] == least[0]


@pytest.mark.slow
def test_impossible_budget_exits_2_with_one_line(files, least, tmp_path, forked):
    proc = forked(["-m", "dass.search", f"teacher={files['teacher']}", f"predictor={files['predictor']}",
                   f"run_dir={tmp_path / 'r'}", f"budget.params={least[1] - 1}"], cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"budget.params={least[1] - 1}:" in lines[0] and str(least[1]) in lines[0]
    assert not (tmp_path / "r").exists()  # refused before any work


def test_candidates_file(files, space, weights, tmp_path):
    t = teacher_arch(space)
    small = Arch((1, 1, 1, 1), ((2,), (4,), (4,), (8,)))
    mid = Arch((1, 2, 1, 2), ((4,), (6, 8), (8,), (12, 16)))
    path = tmp_path / "cands.json"
    path.write_text(json.dumps([small.to_dict(), t.to_dict(), mid.to_dict(), small.to_dict()]))
    top = search(files, tmp_path / "r", f"candidates={path}", "top_k=5", f"budget.macs={macs(mid, space, NUM_CLASSES)}")
    got = [Arch.from_dict(r["arch"]) for r in top["top"]]
    # duplicates removed, the teacher dropped by the budget, order by the known score
    assert sorted(got, key=str) == sorted([small, mid], key=str)
    assert got[0] == max((small, mid), key=lambda a: float(weights @ onehot(a, space)))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([small.to_dict(), {"depths": [1, 1, 1, 1], "widths": [[5], [4], [4], [8]]}]))
    with pytest.raises(DassError, match="candidate 1"):
        search(files, tmp_path / "r2", f"candidates={bad}")


def test_evolution_respects_budgets_and_improves_on_its_start(files, space, weights, tmp_path):
    t = teacher_arch(space)
    budget = macs(t, space, NUM_CLASSES) // 3
    top = search(files, tmp_path, "strategy=evolution", "evolution.population=20", "evolution.generations=4",
                 "evolution.parents=5", f"budget.macs={budget}")
    rows = read_scores(tmp_path)
    assert all(int(r["macs"]) <= budget for r in rows)
    assert len(rows) > 20  # children were scored beyond the initial population
    start = search(files, tmp_path / "start", "strategy=evolution", "evolution.population=20",
                   "evolution.generations=0", "evolution.parents=5", f"budget.macs={budget}")
    assert top["top"][0]["score"] >= start["top"][0]["score"]


def test_teacher_from_another_space_is_refused(files, tmp_path):
    from dass.space import load_space
    other = load_space(str(ROOT / "configs/space/cpu.yaml"))
    path = tmp_path / "t.pt"
    net = ResNet(teacher_arch(other), other, NUM_CLASSES)
    atomic_torch_save({"state_dict": net.state_dict(), "space": cfgmod.to_dict(other), "num_classes": NUM_CLASSES},
                      path)
    # the message names both files and the field that differs (both spaces may share a name)
    with pytest.raises(DassError, match=r"teacher=.*t\.pt \(space 'cpu', .*\) and predictor=.* are of different spaces"):
        search({**files, "teacher": path}, tmp_path / "r")


def test_teacher_accuracy_and_dataset_features_come_from_the_dataset(space, tmp_path):
    """A teacher checkpoint without metrics and a DSTA predictor: search reads the dataset."""
    sd = random_teacher_sd(space, 8)
    rng = np.random.default_rng(2)
    for split, n in (("train", 20), ("test", 16)):
        images = rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
        arrays = ImageArrays(images, np.arange(n) % NUM_CLASSES, NUM_CLASSES, "dtd")
        write_split(tmp_path / "data", "dtd", split, arrays)
    teacher = tmp_path / "teacher.pt"
    atomic_torch_save({"state_dict": sd, "space": cfgmod.to_dict(space), "num_classes": NUM_CLASSES}, teacher)
    torch.manual_seed(0)
    model = Predictor(PredictorConfig(InputDims.for_space(space), "DSTA", "graph", cost_features=True))
    pred = LoadedPredictor(model, {k: torch.full_like(v, 0.005) for k, v in model.named_parameters()}, space,
                           {"kind": "relative", "label": "best_acc", "support_default": 0.0},
                           {"steps": 1, "first_order": False},
                           {"noise_seed": 0, "remap": "copy_paste_first", "dataset_feats": 10})
    save_predictor(pred, tmp_path / "best.pt")
    files = {"teacher": teacher, "predictor": tmp_path / "best.pt"}
    with pytest.raises(DassError, match="dataset="):
        search(files, tmp_path / "r0", "pool_size=5")
    top = search(files, tmp_path / "r", "pool_size=50", "top_k=3", "dataset=dtd", f"data_root={tmp_path / 'data'}")
    test = np.load(tmp_path / "data/dtd/test_images.npy")
    x = (torch.from_numpy(test).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        right = (teacher_net(sd, space)(x).argmax(1).numpy() == np.arange(16) % NUM_CLASSES).mean()
    assert top["teacher_acc"] == pytest.approx(100 * right)
    assert len(top["top"]) == 3 and top["input_type"] == "DSTA"
    for r in top["top"]:  # relative target: accuracy = score x teacher accuracy
        assert r["pred_acc"] == pytest.approx(r["score"] * top["teacher_acc"], abs=1e-3)


def test_candidates_with_precomputed_maps(files, space, tmp_path):
    """An imported pool (noise_seed -1): S and T maps and the support label come from the file.

    The predictor reads S only and its score is an increasing function of the map's sum: the conv
    kernels sum a 2 x 2 map into feature 0, the head passes it through tanh(0.001 * .).
    """
    model = Predictor(PredictorConfig(InputDims.for_space(space), "S"))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.smap_enc.conv1.weight[0] = 1.0
        model.smap_enc.conv2.weight[0, 0, 1, 1] = 1.0
        model.hidden.weight[0, 0] = 0.001
        model.out.weight[0, 0] = 1.0
    pred = LoadedPredictor(model, {k: torch.zeros_like(v) for k, v in model.named_parameters()}, space,
                           {"kind": "raw", "label": "best_acc", "support_default": 0.0},
                           {"steps": 1, "first_order": False}, {"noise_seed": -1, "remap": "copy_paste_first"})
    save_predictor(pred, tmp_path / "best.pt")
    archs = sample_unique(space, 12, np.random.default_rng(3))
    k = np.random.default_rng(4).permutation(12) + 1          # map sums 1..12
    c = space.stage_widths[-1]
    fmap = torch.ones(13, c, 2, 2) * torch.tensor(list(k) + [100], dtype=torch.float32)[:, None, None, None] / (4 * c)
    rows = [a.to_dict() for a in archs] + [archs[0].to_dict()]  # a repeat: its map (sum 100) is ignored
    cands = tmp_path / "pool.pt"
    atomic_torch_save({"archs": rows, "fmap": fmap.half(),
                       "teacher": {"fmap": torch.zeros(c, 2, 2).half(), "best_acc": 42.0}}, cands)
    files = {**files, "predictor": tmp_path / "best.pt"}
    top = search(files, tmp_path / "r", f"candidates={cands}", "top_k=3")
    assert [Arch.from_dict(r["arch"]) for r in top["top"]] == [archs[int(i)] for i in np.argsort(-k)[:3]]
    assert [r["score"] for r in top["top"]] == pytest.approx([np.tanh(0.001 * v) for v in (12, 11, 10)], abs=1e-6)
    assert top["teacher_acc"] == 42.0 and top["num_candidates"] == 12
    with pytest.raises(DassError, match="noise_seed"):
        search(files, tmp_path / "r2", "pool_size=10")


def test_standardized_predictor_ranks_without_accuracies(files, space, tmp_path):
    """A score-only target needs no teacher accuracy and reports none."""
    from dass.predictor import load_predictor
    p = load_predictor(files["predictor"])
    p.target = {"kind": "standardized", "label": "best_acc", "support_default": 1.5}
    save_predictor(p, tmp_path / "std.pt")
    teacher = tmp_path / "teacher.pt"
    atomic_torch_save({"state_dict": random_teacher_sd(space, 3), "space": cfgmod.to_dict(space),
                       "num_classes": NUM_CLASSES}, teacher)   # no metrics, and no dataset given
    top = search({"teacher": teacher, "predictor": tmp_path / "std.pt"}, tmp_path / "r", "pool_size=20", "top_k=2")
    assert top["teacher_acc"] is None and all(r["pred_acc"] is None for r in top["top"])
    assert top["top"][0]["score"] >= top["top"][1]["score"]


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "data/glyphs/ogham").exists(), reason="glyph data not generated (data/)")
def test_default_predictor_search_with_batched_proxies_equals_one_network_at_a_time(tmp_path, monkeypatch):
    """The shipped cpu predictor reads NASWOT and synflow of a shortlist: a search with them computed
    in batched masked passes writes the scores and picks of the search with them computed one
    network at a time (the reference path of dass.proxies.batch.archs_proxy)."""
    import functools
    from dass.proxies import batch as proxy_batch, cache as proxy_cache

    def search(name):
        cfg = cfgmod.load(SearchConfig, str(ROOT / "configs/search/cpu.yaml"), [
            f"teacher={ROOT / 'assets/cpu/teachers/glyphs-ogham/teacher.pt'}",
            f"predictor={ROOT / 'assets/cpu/predictors/dass/best.pt'}", f"run_dir={tmp_path / name}",
            "dataset=glyphs/ogham", f"data_root={ROOT / 'data'}", "pool_size=200", "proxy_shortlist=24",
            "progress=false", "device=cpu"])
        top = run(cfg)
        with open(tmp_path / name / "scores.csv") as f:
            rows = list(csv.DictReader(f))
        return top, rows

    fast, fast_rows = search("batched")
    monkeypatch.setattr(proxy_cache, "archs_proxy", functools.partial(proxy_batch.archs_proxy, batched=False))
    ref, ref_rows = search("reference")
    assert [t["arch"] for t in fast["top"]] == [t["arch"] for t in ref["top"]]
    assert sum(r["proxies_computed"] == "True" for r in ref_rows) == 24
    assert [r["arch"] for r in fast_rows] == [r["arch"] for r in ref_rows]
    np.testing.assert_allclose([float(r["score"]) for r in fast_rows], [float(r["score"]) for r in ref_rows],
                               rtol=1e-5, atol=1e-6)
