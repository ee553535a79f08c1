"""Meta-training on a small synthetic database: it learns, it resumes after a kill, it fails clearly."""
from __future__ import annotations

import csv
import json
import signal
import sys
from pathlib import Path

import pytest
import torch

from dass import config as cfgmod
from dass.errors import DassError
from dass.io import safe_torch_load
from dass.predictor import MetaTrainConfig, run
from dass.predictor import evaluate_predictor, load_predictor
from synthetic_db import tiny_space

ROOT = Path(__file__).resolve().parents[2]
# Small encoders keep an episode at a few tens of milliseconds; the recipe is otherwise the paper's
# (STA, raw targets, one second-order inner step, learnable inner lrs).
FAST = ["model.map_hidden=32", "model.map_out=64", "n_query=20", "outer_lr=0.002", "progress=false"]


@pytest.fixture
def db(synthetic_db):
    return synthetic_db  # built once per run (conftest.py)


def config(db, run_dir, *extra) -> MetaTrainConfig:
    return cfgmod.load(MetaTrainConfig, None, [f"db={db}", f"run_dir={run_dir}", *FAST, *extra])


@pytest.mark.slow
def test_meta_training_ranks_held_out_tasks(db, tmp_path):
    metrics = run(config(db, tmp_path, "episodes=100", "eval_every=10"))
    assert metrics["meta_test_mean"]["spearman"] > 0.9
    assert set(metrics["meta_test"]) == {"synth-6", "synth-7"}
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["episode"]) for r in rows] == list(range(10, 101, 10))
    best = max(float(r["valid_spearman"]) for r in rows)
    assert metrics["best_valid_spearman"] == pytest.approx(best)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["best_episode"] == metrics["best_episode"]
    # best.pt rebuilds on its own and reproduces the reported meta-test numbers.
    p = load_predictor(tmp_path / "best.pt", tiny_space())
    assert p.input_type == "STA" and p.adapt == {"steps": 1, "first_order": False}
    assert p.info["episode"] == metrics["best_episode"]
    from dass.database.format import load_task_db
    tasks = [load_task_db(db / f"synth-{k}.pt") for k in (6, 7)]
    again = evaluate_predictor(tmp_path / "best.pt", tasks)
    for k, r in again.items():
        assert r["spearman"] == pytest.approx(metrics["meta_test"][k]["spearman"])
    assert (tmp_path / "config.yaml").is_file()


@pytest.mark.slow
def test_other_inputs_targets_and_losses_train(db, tmp_path):
    metrics = run(config(db, tmp_path, "episodes=4", "eval_every=2", "input_type=DSTA", "arch_encoder=graph",
                         "cost_features=true", "target=standardized", "rank_loss_weight=1.0", "first_order=true",
                         "inner_steps=2"))
    assert metrics["episodes"] == 4 and len(metrics["meta_test"]) == 2
    p = load_predictor(tmp_path / "best.pt")
    assert p.input_type == "DSTA" and p.model.cfg.arch_encoder == "graph" and p.model.cfg.cost_features
    assert p.adapt == {"steps": 2, "first_order": True}
    # standardized: the support label is the mean teacher z-score over the training tasks
    from dass.predictor import load_tasks
    _, tasks = load_tasks(db)
    z = [(t.teacher_acc - float(t.acc.mean())) / float(t.acc.std()) for t in tasks["meta_train"]]
    calib = p.target.pop("calib")
    assert p.target == {"kind": "standardized", "label": "best_acc", "support_default": pytest.approx(sum(z) / len(z))}
    # the calibration is the least-squares line of acc / teacher_acc on the adapted outputs (numpy's polyfit)
    import numpy as np
    from dass.predictor import predict_task
    out = [predict_task(p.model, p.inner_lrs, p.target, 2, t).numpy() for t in tasks["meta_train"]]
    rel = [(t.acc / t.teacher_acc).numpy() for t in tasks["meta_train"]]
    slope, intercept = np.polyfit(np.concatenate(out), np.concatenate(rel), 1)
    assert calib == pytest.approx([intercept, slope], rel=1e-4, abs=1e-6)
    assert metrics["calibration"] == calib


def test_cost_prior_starts_at_the_least_squares_fit_of_the_targets(db, tmp_path):
    import numpy as np
    from dass.predictor import MetaTrainer
    from dass.predictor import cost_features, load_tasks, take
    cfg = config(db, tmp_path, "cost_prior=true", "target=standardized")
    space, tasks = load_tasks(db)
    trainer = MetaTrainer(cfg, space, tasks, torch.device("cpu"))
    X = np.concatenate([cost_features(t.archs, t.space, t.num_classes).numpy() for t in tasks["meta_train"]])
    y = np.concatenate([((t.acc - t.acc.mean()) / t.acc.std()).numpy() for t in tasks["meta_train"]])
    A = np.concatenate([X, np.ones((len(X), 1))], axis=1)
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    with torch.no_grad():
        got = np.concatenate([trainer.model(take(t.inputs(trainer.model.needs))).numpy() for t in tasks["meta_train"]])
    np.testing.assert_allclose(got, A @ coef, atol=1e-4)
    # with eval_at_start, episode 0 (the prior alone) is validated and can be the checkpoint
    metrics = run(config(db, tmp_path / "run", "cost_prior=true", "eval_at_start=true", "episodes=2",
                         "eval_every=2", "target=standardized", "first_order=true"))
    with open(tmp_path / "run" / "history.csv") as f:
        assert [int(r["episode"]) for r in csv.DictReader(f)] == [0, 2]
    assert metrics["pred_acc_mae_mean"]["meta_test"] >= 0


@pytest.mark.parametrize("width", ["sum", "mean"])
def test_stage_prior_starts_at_the_least_squares_fit_on_cost_and_stages(db, tmp_path, width):
    """stage_features: the prior reads [cost, stage encoding]; the stage columns are written out here
    from the architectures (depth / max depth, summed widths / (max depth x stage width), or with
    stage_width=mean the mean block width / stage width)."""
    import numpy as np
    from dass.predictor import MetaTrainer
    from dass.predictor import cost_features, load_tasks, take
    cfg = config(db, tmp_path, "cost_prior=true", "stage_features=true", "target=standardized",
                 f"stage_width={width}")
    space, tasks = load_tasks(db)
    trainer = MetaTrainer(cfg, space, tasks, torch.device("cpu"))
    assert trainer.model.prior.in_features == 2 + 2 * space.num_stages

    def stages(a):
        return [v for d, ws, full in zip(a.depths, a.widths, space.stage_widths)
                for v in (d / space.max_depth, sum(ws) / full / (space.max_depth if width == "sum" else len(ws)))]
    X = np.concatenate([np.concatenate([cost_features(t.archs, t.space, t.num_classes).numpy(),
                                        np.array([stages(a) for a in t.archs])], 1) for t in tasks["meta_train"]])
    y = np.concatenate([((t.acc - t.acc.mean()) / t.acc.std()).numpy() for t in tasks["meta_train"]])
    A = np.concatenate([X, np.ones((len(X), 1))], axis=1)
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    with torch.no_grad():
        got = np.concatenate([trainer.model(take(t.inputs(trainer.model.needs))).numpy() for t in tasks["meta_train"]])
    np.testing.assert_allclose(got, A @ coef, atol=1e-3)
    with pytest.raises(DassError, match="stage_features"):
        config(db, tmp_path, "stage_features=true").check()
    with pytest.raises(DassError, match="stage_width"):
        config(db, tmp_path, "stage_width=max")


def test_onehot_prior_starts_at_the_ridge_fit_of_the_targets(db, tmp_path):
    """prior_onehot: the untrained predictor is the ridge regression of the targets on [cost, onehot],
    penalty on the standardised columns (closed form here, with numpy); constant columns get weight 0."""
    import numpy as np
    from dass.predictor import MetaTrainer
    from dass.predictor import cost_features, load_tasks, take
    cfg = config(db, tmp_path, "cost_prior=true", "prior_onehot=true", "prior_ridge=3.0", "target=standardized")
    space, tasks = load_tasks(db)
    trainer = MetaTrainer(cfg, space, tasks, torch.device("cpu"))
    X = np.concatenate([np.concatenate([cost_features(t.archs, t.space, t.num_classes).numpy(), t.onehot.numpy()], 1)
                        for t in tasks["meta_train"]]).astype(np.float64)
    y = np.concatenate([((t.acc - t.acc.mean()) / t.acc.std()).numpy() for t in tasks["meta_train"]])
    sd = X.std(0)
    keep = sd > 0
    Z = (X[:, keep] - X[:, keep].mean(0)) / sd[keep]
    w = np.linalg.solve(Z.T @ Z + 3.0 * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
    want = y.mean() + Z @ w
    with torch.no_grad():
        got = np.concatenate([trainer.model(take(t.inputs(trainer.model.needs))).numpy() for t in tasks["meta_train"]])
    np.testing.assert_allclose(got, want, atol=1e-4)
    # a ridge fit is worse on its own rows than least squares, and better than the mean alone
    ls = np.linalg.lstsq(np.concatenate([Z, np.ones((len(Z), 1))], 1), y, rcond=None)[0]
    rss = lambda p: float(((y - p) ** 2).sum())  # noqa: E731
    assert rss(np.concatenate([Z, np.ones((len(Z), 1))], 1) @ ls) < rss(want) < rss(np.full_like(y, y.mean()))
    with pytest.raises(DassError, match="cost_prior"):
        config(db, tmp_path, "prior_onehot=true").check()


def test_tree_prior_starts_at_the_boosted_trees_fit_and_survives_the_checkpoint(db, tmp_path):
    """prior_model=trees: the untrained predictor outputs what the boosted trees fitted on [cost,
    stage] predict (numpy, :class:`BoostedTrees`); the trees are buffers, not meta-trained or adapted,
    and best.pt reloads them (weights_only) to the same outputs."""
    import numpy as np
    from dass.predictor import MetaTrainer
    from dass.predictor import cost_features, load_tasks, predict_task, take
    from dass.predictor.boosting import BoostedTrees
    from dass.space import stage_batch
    extra = ["cost_prior=true", "stage_features=true", "prior_model=trees", "prior_rounds=40", "prior_depth=2",
             "target=standardized", "first_order=true"]
    space, tasks = load_tasks(db)
    trainer = MetaTrainer(config(db, tmp_path, *extra), space, tasks, torch.device("cpu"))
    X = np.concatenate([np.concatenate([cost_features(t.archs, t.space, t.num_classes).numpy(),
                                        stage_batch(t.archs, t.space).numpy()], 1) for t in tasks["meta_train"]])
    y = np.concatenate([((t.acc - t.acc.mean()) / t.acc.std()).numpy() for t in tasks["meta_train"]])
    want = BoostedTrees(40, 0.05, 2, min_leaf=20).fit(X.astype(np.float64), y).predict(X)
    with torch.no_grad():
        got = np.concatenate([trainer.model(take(t.inputs(trainer.model.needs))).numpy() for t in tasks["meta_train"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not any(k.startswith("prior.") for k, _ in trainer.model.named_parameters())
    run(config(db, tmp_path / "run", *extra, "episodes=2", "eval_every=1"))
    p = load_predictor(tmp_path / "run" / "best.pt")
    assert p.model.cfg.prior_model == "trees" and p.model.prior.features.shape == (40, 3)
    trained = MetaTrainer(config(db, tmp_path, *extra), space, tasks, torch.device("cpu")).model
    torch.testing.assert_close(p.model.prior.thresholds, trained.prior.thresholds)   # the fit is deterministic
    t = tasks["meta_test"][0]
    a = predict_task(p.model, p.inner_lrs, p.target, 1, t)
    b = predict_task(load_predictor(tmp_path / "run" / "best.pt").model, p.inner_lrs, p.target, 1, t)
    torch.testing.assert_close(a, b)
    with pytest.raises(DassError, match="cost_prior"):
        config(db, tmp_path, "prior_model=trees").check()


def test_prior_fit_recovers_a_known_linear_target():
    """The prior's fit, least squares (alpha 0), recovers y = 2 + 3 x0 - x1 exactly; a constant column
    gets weight 0; a ridge penalty shrinks the weights toward 0."""
    import numpy as np
    from dass.predictor.linear import Ridge
    g = np.random.default_rng(0)
    X = np.concatenate([g.normal(size=(40, 2)), np.full((40, 1), 5.0)], axis=1)
    y = 2 + 3 * X[:, 0] - X[:, 1]
    m = Ridge().fit(X, y, 0.0)
    np.testing.assert_allclose(m.coef, [3.0, -1.0, 0.0], atol=1e-9, rtol=0)
    assert m.bias == pytest.approx(2.0, abs=1e-9)
    w10 = Ridge().fit(X, y, 10.0).coef
    assert 0 < w10[0] < 3 and -1 < w10[1] < 0 and w10[2] == 0


def test_meta_batch_draws_that_many_distinct_tasks_per_episode_the_same_on_every_run(db):
    """meta_batch=k: each episode trains on k distinct meta-train tasks, drawn from the episode's own
    generator (a resumed run draws the same); over episodes every task is drawn; 0 = all tasks."""
    import numpy as np
    from dass.predictor.data import load_tasks
    from dass.predictor.meta_train import MetaTrainer
    space, tasks = load_tasks(str(db), "best_acc")
    n = len(tasks["meta_train"])
    assert n >= 3
    trainer = MetaTrainer(config(db, "unused", "meta_batch=2"), space, tasks, torch.device("cpu"))
    draws = [[t.key for t in trainer.episode_tasks(np.random.default_rng([0, e]))] for e in range(30)]
    assert all(len(d) == 2 == len(set(d)) for d in draws)
    assert draws[7] == [t.key for t in trainer.episode_tasks(np.random.default_rng([0, 7]))]
    assert {k for d in draws for k in d} == {t.key for t in tasks["meta_train"]}
    every = MetaTrainer(config(db, "unused"), space, tasks, torch.device("cpu"))
    assert len(every.episode_tasks(np.random.default_rng(0))) == n
    with pytest.raises(DassError, match="meta_batch"):
        config(db, "unused", "meta_batch=-1").check()


def test_divergence_is_a_clear_error(db, tmp_path):
    with pytest.raises(DassError, match="diverged at episode 1"):
        run(config(db, tmp_path, "episodes=3", "inner_lr_init=1.0e+30"))


def test_resume_refuses_a_changed_recipe(db, tmp_path):
    run(config(db, tmp_path, "episodes=2", "eval_every=1"))
    with pytest.raises(DassError, match="target"):
        run(config(db, tmp_path, "episodes=4", "target=relative"))


def _cli(db, run_dir, episodes):
    return [sys.executable, "-m", "dass.predictor", f"db={db}", f"run_dir={run_dir}", f"episodes={episodes}",
            "eval_every=5", "checkpoint_every=5", *FAST, "model.map_hidden=16", "model.map_out=32", "n_query=10"]


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_result(db, tmp_path, kill_at, forked):
    episodes = 50
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    run(cfgmod.load(MetaTrainConfig, None, _cli(db, ref, episodes)[3:]))
    # SIGKILL right after the 2nd checkpoint (episode 10 of 50) is written (a state, not a time: tests/kill_at.py)
    killed = kill_at(f"{cut}/last.pt", 2, "dass.predictor", _cli(db, cut, episodes)[3:])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert safe_torch_load(cut / "last.pt")["episode"] == 2 * 5
    done = forked(_cli(db, cut, episodes)[1:], cwd=ROOT)   # the same command again
    assert done.returncode == 0, done.stderr
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((cut / "metrics.json").read_text())
    assert b["episodes"] == episodes
    assert (b["best_valid_spearman"], b["best_episode"]) == (a["best_valid_spearman"], a["best_episode"])
    sa, sb = safe_torch_load(ref / "best.pt"), safe_torch_load(cut / "best.pt")
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    for k, v in sa["inner_lrs"].items():
        assert torch.equal(v, sb["inner_lrs"][k]), k
