"""The predictor: encoders, input types, inner-loop adaptation, metrics, checkpoints."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch.func import functional_call

from dass.errors import DassError
from dass.predictor import (InputDims, LoadedPredictor, Predictor, PredictorConfig, adapt, canonical_input_type,
                            init_inner_lrs, load_predictor, save_predictor, student_inputs, take,
                            task_context)
from dass.predictor.encoders import GraphEncoder, MapEncoder
from dass.correlation import correlations
from dass.predictor.set_encoder import SetEncoder
from dass.space import SpaceConfig, graph_batch, load_space, sample_unique, teacher_arch
from synthetic_db import tiny_space


def make_inputs(space: SpaceConfig, archs, needs, seed=0, num_classes=5):
    g = torch.Generator().manual_seed(seed)
    c, r = space.stage_widths[-1], space.stage_resolutions()[-1]
    maps = torch.rand(len(archs), c, r, r, generator=g)
    tmap = torch.rand(c, r, r, generator=g)
    dset = torch.rand(7, c, generator=g)
    return take({**student_inputs(archs, space, num_classes, needs, maps), **task_context(needs, tmap, dset)})


def test_head_width_follows_input_type_paper_sizes():
    paper = InputDims.for_space(SpaceConfig())
    # 256 (S) + 256 (T) + 64 (A) = 576, the paper's head input; D adds 64, cost features 2.
    assert Predictor(PredictorConfig(paper, "STA")).hidden.in_features == 576
    assert Predictor(PredictorConfig(paper, "DSTA")).hidden.in_features == 640
    assert Predictor(PredictorConfig(paper, "A")).hidden.in_features == 64
    assert Predictor(PredictorConfig(paper, "DA", cost_features=True)).hidden.in_features == 130
    assert Predictor(PredictorConfig(paper, "STA")).out.in_features == 64


def test_input_type_is_validated_and_canonical():
    assert canonical_input_type("ats") == "STA"
    assert canonical_input_type("ADTS") == "DSTA"
    for bad in ("", "SX", "SS"):
        with pytest.raises(DassError):
            canonical_input_type(bad)


@pytest.mark.parametrize("r", [1, 2, 8])
def test_map_encoder_accepts_small_maps(r):
    enc = MapEncoder(16, 8, 12)
    out = enc(torch.rand(3, 16, r, r))
    assert out.shape == (3, 12)
    assert (out >= 0).all()  # ReLU before the pool


def test_every_input_type_predicts_one_value_per_student():
    space = tiny_space()
    archs = sample_unique(space, 6, np.random.default_rng(0))
    for it in ("A", "DA", "STA", "DSTA", "S", "T"):
        for enc in ("onehot", "graph"):
            model = Predictor(PredictorConfig(InputDims.for_space(space), it, enc, cost_features=True))
            out = model(make_inputs(space, archs, model.needs))
            assert out.shape == (6,)
            assert torch.isfinite(out).all()


def test_graph_encoder_ignores_absent_nodes():
    space = tiny_space()
    archs = sample_unique(space, 4, np.random.default_rng(1))
    g = graph_batch(archs, space)
    enc = GraphEncoder(g["x"].shape[-1])
    noisy = {k: v.clone() for k, v in g.items()}
    noisy["x"][noisy["mask"] == 0] = 5.0   # garbage in absent slots
    torch.testing.assert_close(enc(g), enc(noisy))


def test_set_encoder_is_order_invariant():
    torch.manual_seed(0)
    enc = SetEncoder(10, dim=16, out=8, heads=4, inducing=4)
    rows = torch.randn(9, 10)
    torch.testing.assert_close(enc(rows), enc(rows[torch.randperm(9)]), rtol=1e-5, atol=1e-6)
    assert enc(rows).shape == (1, 8)


def support_for(space, model, seed=0):
    t = teacher_arch(space)
    inputs = make_inputs(space, [t], model.needs, seed)
    inputs["smap"] = inputs["tmap"][None]   # the teacher's own map is S and T
    return inputs


def test_one_adaptation_step_moves_teacher_prediction_toward_its_accuracy():
    space = tiny_space()
    torch.manual_seed(0)
    model = Predictor(PredictorConfig(InputDims.for_space(space), "STA"))
    lrs = init_inner_lrs(model, 0.005)
    support = support_for(space, model)
    params = dict(model.named_parameters())
    p0 = model(support)
    label = p0.detach() + 0.3
    new = adapt(model, params, lrs, support, label, steps=1, first_order=True)
    p1 = functional_call(model, new, (support,)).detach()
    p0 = p0.detach()
    assert abs(float(p1 - label)) < abs(float(p0 - label))
    # First-order Taylor: a step theta -= lr * dMSE/dtheta changes the output by about
    # -lr * 2 (p0 - y) * ||dp/dtheta||^2 (all learning rates equal).
    dp = torch.autograd.grad(model(support).sum(), list(params.values()))
    expected = -0.005 * 2 * float(p0 - label) * sum(float((g ** 2).sum()) for g in dp)
    assert float(p1 - p0) == pytest.approx(expected, rel=0.05)


def bilevel_loss(model, params, lrs, support, label, query, y, first_order):
    new = adapt(model, params, lrs, support, label, steps=1, first_order=first_order)
    return F.mse_loss(functional_call(model, new, (query,)), y)


def test_second_order_gradients_match_finite_differences_and_reach_inner_lrs():
    space = tiny_space()
    torch.manual_seed(0)
    model = Predictor(PredictorConfig(InputDims.for_space(space), "STA")).double()
    lrs = {k: v.detach().double().requires_grad_(True) for k, v in init_inner_lrs(model, 0.05).items()}
    support = {k: v.double() for k, v in support_for(space, model).items()}
    archs = sample_unique(space, 5, np.random.default_rng(2))
    query = {k: v.double() for k, v in make_inputs(space, archs, model.needs, seed=3).items()}
    label = torch.tensor([0.7], dtype=torch.float64)
    y = torch.linspace(0.2, 0.6, 5, dtype=torch.float64)
    params = dict(model.named_parameters())

    loss = bilevel_loss(model, params, lrs, support, label, query, y, first_order=False)
    g_params = torch.autograd.grad(loss, list(params.values()) + list(lrs.values()))
    grads = dict(zip(list(params) + [f"lr:{k}" for k in lrs], g_params))
    for k in lrs:
        assert grads[f"lr:{k}"].abs().sum() > 0, f"no gradient reaches the inner lr of {k}"

    def loss_at(tensor, index, value):
        with torch.no_grad():
            tensor[index] = value
        return bilevel_loss(model, params, lrs, support, label, query, y, True).item()

    def numeric(tensor, index, h=1e-5):
        old = tensor[index].item()
        up, down = loss_at(tensor, index, old + h), loss_at(tensor, index, old - h)
        loss_at(tensor, index, old)
        return (up - down) / (2 * h)

    # d outer / d theta through the inner step: the second-order gradient matches, the first-order one does not.
    idx = (0, 0)
    w = params["hidden.weight"]
    fd = numeric(w, idx)
    assert float(grads["hidden.weight"][idx]) == pytest.approx(fd, rel=1e-4, abs=1e-9)
    fo = torch.autograd.grad(bilevel_loss(model, params, lrs, support, label, query, y, True), [w])[0]
    assert abs(float(fo[idx]) - fd) > 1e-3 * abs(fd)
    # d outer / d lr, checked the same way.
    lr = lrs["out.weight"]
    assert float(grads["lr:out.weight"][0, 3]) == pytest.approx(numeric(lr, (0, 3)), rel=1e-4, abs=1e-9)


def test_correlations_on_hand_computed_vectors():
    # d = (0, 1, 1, 0): Spearman = 1 - 6 * 2 / (4 * 15) = 0.8; 5 of 6 pairs concordant: tau = 4/6;
    # deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): Pearson = 4 / 5.
    r = correlations([1, 2, 3, 4], [1, 3, 2, 4])
    assert r["spearman"] == pytest.approx(0.8)
    assert r["kendall"] == pytest.approx(2 / 3)
    assert r["pearson"] == pytest.approx(0.8)
    assert correlations(torch.tensor([3.0, 2.0, 1.0]), [1, 2, 3])["spearman"] == pytest.approx(-1.0)
    with pytest.warns(UserWarning, match="constant"):
        assert all(math.isnan(v) for v in correlations([1, 1, 1], [1, 2, 3]).values())


def test_correlations_agree_with_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.normal(size=40)
    r = correlations(a, b)
    assert r["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic)
    assert r["kendall"] == pytest.approx(stats.kendalltau(a, b).statistic)
    assert r["pearson"] == pytest.approx(stats.pearsonr(a, b).statistic)


def saved_predictor(tmp_path, space):
    torch.manual_seed(0)
    model = Predictor(PredictorConfig(InputDims.for_space(space), "STA"))
    p = LoadedPredictor(model, init_inner_lrs(model, 0.005), space, {"kind": "raw", "label": "best_acc",
                        "support_default": 0.0}, {"steps": 1, "first_order": False},
                        {"noise_seed": 0, "remap": "copy_paste_first", "dataset_feats": 0})
    path = tmp_path / "best.pt"
    save_predictor(p, path)
    return p, path


def test_checkpoint_round_trip(tmp_path):
    space = tiny_space()
    p, path = saved_predictor(tmp_path, space)
    q = load_predictor(path, space)
    archs = sample_unique(space, 4, np.random.default_rng(0))
    inputs = make_inputs(space, archs, p.model.needs)
    torch.testing.assert_close(q.model(inputs), p.model(inputs))
    assert q.input_type == "STA" and q.space == space
    assert set(q.inner_lrs) == {k for k, _ in p.model.named_parameters()}


def test_checkpoint_from_another_space_is_refused(tmp_path):
    _, path = saved_predictor(tmp_path, tiny_space())
    with pytest.raises(DassError, match="space"):
        load_predictor(path, load_space("configs/space/cpu.yaml"))


def test_predicted_accuracy_is_the_calibrated_line_clipped_to_percent():
    from dass.predictor.data import to_accuracy
    pred = torch.tensor([-20.0, 0.0, 0.5, 20.0])
    # calib [a, b] = [0.8, 0.1] under a 90 % teacher: 90 * (0.8 + 0.1 * p) = 72, 76.5 and, clipped, 0 and 100
    got = to_accuracy({"kind": "standardized", "calib": [0.8, 0.1]}, pred, 90.0)
    assert got.tolist() == pytest.approx([0.0, 72.0, 76.5, 100.0])
    assert to_accuracy({"kind": "raw"}, torch.tensor([0.5, 1.2]), 90.0).tolist() == pytest.approx([50.0, 100.0])
    assert to_accuracy({"kind": "standardized"}, pred, 90.0) is None


def test_teacher_aware_calibration_by_hand():
    from dass.predictor.data import fit_calibration, to_accuracy
    # calib [a, b, c, d] = [1.2, 0.05, -0.3, 0.02] under a 40 % teacher (t = 0.4):
    # relative 1.2 - 0.12 + (0.05 + 0.008) p = 1.08 + 0.058 p; at p = 0, 1: 43.2 and 45.52
    got = to_accuracy({"kind": "standardized", "calib": [1.2, 0.05, -0.3, 0.02]}, torch.tensor([0.0, 1.0]), 40.0)
    assert got.tolist() == pytest.approx([43.2, 45.52])
    with pytest.raises(DassError, match="3 coefficients"):
        to_accuracy({"kind": "standardized", "calib": [1.0, 0.1, 0.2]}, torch.tensor([0.0]), 40.0)
    # labels made exactly by that map on three teachers: the four-term fit recovers it, the line cannot
    g = torch.Generator().manual_seed(0)
    preds = [torch.randn(30, generator=g) for _ in range(3)]
    teachers = [30.0, 60.0, 90.0]
    coef = [1.2, 0.05, -0.3, 0.02]
    accs = [to_accuracy({"kind": "standardized", "calib": coef}, p, t) for p, t in zip(preds, teachers)]
    assert fit_calibration(preds, accs, teachers, teacher_terms=True) == pytest.approx(coef, abs=1e-6)
    line = fit_calibration(preds, accs, teachers)
    assert len(line) == 2
    err = sum(float((to_accuracy({"kind": "standardized", "calib": line}, p, t) - a).abs().mean())
              for p, t, a in zip(preds, teachers, accs))
    assert err > 1.0   # points: one line cannot follow three teachers' offsets


def test_calibration_reads_the_teacher_only_where_meta_valid_says_so(monkeypatch):
    from types import SimpleNamespace
    from dass.predictor import meta_train
    outs = {}

    def task(key, teacher, rel_at_zero):
        p = torch.linspace(-1, 1, 11)
        outs[key] = p
        return SimpleNamespace(key=key, teacher_acc=teacher, acc=teacher * (rel_at_zero + 0.05 * p))

    monkeypatch.setattr(meta_train, "predict_task", lambda model, lrs, target, steps, t, dev=None: outs[t.key])
    pred = SimpleNamespace(model=torch.nn.Linear(1, 1), inner_lrs={}, target={"kind": "standardized"},
                           adapt={"steps": 1})
    # students reach a larger share of a weaker teacher: relative accuracy 1.3 - 0.5 t at the mean
    train = [task(f"tr{i}", t, 1.3 - 0.5 * t / 100) for i, t in enumerate((30.0, 50.0, 70.0, 90.0))]
    valid = [task(f"va{i}", t, 1.3 - 0.5 * t / 100) for i, t in enumerate((40.0, 80.0))]
    meta_train.calibrate(pred, train, valid)
    assert pred.target["calib"] == pytest.approx([1.3, 0.05, -0.5, 0.0], abs=1e-6)
    # one relation for every teacher: the line is as good on meta-valid, so the line is kept
    train = [task(f"tr{i}", t, 0.9) for i, t in enumerate((30.0, 50.0, 70.0, 90.0))]
    valid = [task(f"va{i}", t, 0.9) for i, t in enumerate((40.0, 80.0))]
    meta_train.calibrate(pred, train, valid)
    assert pred.target["calib"] == pytest.approx([0.9, 0.05], abs=1e-6)
