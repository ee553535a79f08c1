"""Evaluation: correlations by hand and vs scipy, every scorer on a tiny database, tables, the CLI."""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from assets.tiny_db import TINY, write_predictor, write_tiny_db
from dass.database.saved import SavedTask
from dass.errors import DassError
from dass.evaluation import baselines as bl
from dass import correlation as corr
from dass.evaluation import tables
from dass.evaluation.search_kd import budget_pool, search_rows
from dass.space import Arch, teacher_arch, macs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny(tiny_db):
    return tiny_db  # (root, {key: task dict}), built once per run (conftest.py)


def saved(tasks: dict) -> dict:
    """The task dicts as the evaluation reads them."""
    return {k: SavedTask.from_db(d) for k, d in tasks.items()}


# ------------------------------------------------------------------------------------- correlations

def test_hand_computed_spearman_and_kendall():
    # ranks differ by d = (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8;
    # 2 discordant pairs ((1,2), (3,4)) of 10: tau = (8 - 2) / 10 = 0.6
    c = corr.correlations([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert c["spearman"] == pytest.approx(0.8)
    assert c["kendall"] == pytest.approx(0.6)
    # Pearson by hand: centred x = (-2..2), centred y = (-1, -2, 1, 0, 2): 8 / sqrt(10 * 10)
    assert c["pearson"] == pytest.approx(0.8)


def test_monotone_reversed_and_scipy_agreement():
    x = np.array([0.3, 1.0, 2.5, 7.0, 9.0])
    up = corr.correlations(x, 2 * x + 1)
    assert up == pytest.approx({"spearman": 1.0, "kendall": 1.0, "pearson": 1.0})
    down = corr.correlations(x, -x)
    assert down == pytest.approx({"spearman": -1.0, "kendall": -1.0, "pearson": -1.0})
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)
    c = corr.correlations(a, b)
    assert c["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic)
    assert c["kendall"] == pytest.approx(stats.kendalltau(a, b).statistic)
    assert c["pearson"] == pytest.approx(stats.pearsonr(a, b).statistic)


def test_constant_vectors_give_nan_with_a_warning():
    with pytest.warns(UserWarning, match="constant"):
        c = corr.correlations([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert all(math.isnan(v) for v in c.values())
    with pytest.warns(UserWarning):
        assert math.isnan(corr.correlations([1.0], [1.0])["spearman"])
    assert corr.nanmean([0.5, float("nan"), 0.25]) == pytest.approx(0.375)
    assert math.isnan(corr.nanmean([float("nan")]))


def test_partial_spearman_by_hand_and_zero_for_macs():
    macs = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    true = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    # MACs itself, any monotone transform of it, and a linear one: nothing left beyond MACs -> 0.
    assert corr.partial_spearman(macs, true, macs) == 0.0
    assert corr.partial_spearman(np.log(macs), true, macs) == 0.0
    assert corr.partial_spearman(-macs ** 3, true, macs) == 0.0
    # By hand: MACs ranks m = 1..6 (mean 3.5); the true ranks' residual on m is t - m (slope 1,
    # intercept 0 since t and m share mean and covariance) = (0, 1, -1, 1, -1, 0). A score equal to
    # those residuals has ranks s = (3.5, 5.5, 1.5, 5.5, 1.5, 3.5), regressed on m: slope
    # cov(s, m) / var(m) = 0 (s is symmetric around the middle), residual s - 3.5 = (0, 2, -2, 2, -2, 0),
    # exactly 2 x the true residual -> partial correlation 1.
    score = true - macs
    assert corr.partial_spearman(score, true, macs) == pytest.approx(1.0)
    assert corr.partial_spearman(-score, true, macs) == pytest.approx(-1.0)
    # Plain Spearman of that score is far from 1 (MACs explains most of the order).
    assert corr.correlations(score, true)["spearman"] < 0.5
    with pytest.warns(UserWarning, match="constant"):
        assert math.isnan(corr.partial_spearman(np.ones(6), true, macs))


def test_partial_spearman_matches_the_closed_form():
    # Partial correlation of ranks: (r_st - r_sm r_tm) / sqrt((1 - r_sm^2)(1 - r_tm^2)) with the
    # pairwise Spearman correlations (the classical first-order partial correlation formula).
    rng = np.random.default_rng(3)
    m, s, t = rng.normal(size=(3, 40))
    t = t + m
    r = lambda a, b: stats.spearmanr(a, b).statistic  # noqa: E731
    want = (r(s, t) - r(s, m) * r(t, m)) / math.sqrt((1 - r(s, m) ** 2) * (1 - r(t, m) ** 2))
    assert corr.partial_spearman(s, t, m) == pytest.approx(want)


def test_bootstrap_interval():
    lo, hi = corr.bootstrap_interval([0.5, 0.5, 0.5])
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    v = [0.0, 1.0]
    # resampled means of two values are 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4: the 5 % and
    # 95 % quantiles are 0 and 1.
    assert corr.bootstrap_interval(v) == pytest.approx((0.0, 1.0))
    lo, hi = corr.bootstrap_interval([0.1, 0.2, 0.3, 0.4, float("nan")], seed=1)
    assert 0.1 <= lo < 0.25 < hi <= 0.4
    assert all(math.isnan(x) for x in corr.bootstrap_interval([float("nan")]))


def test_nan_scores_rank_last_and_pearson_needs_finite_scores():
    with pytest.warns(UserWarning, match="Pearson"):
        c = corr.correlations([float("nan"), 1.0, 2.0], [0.0, 1.0, 2.0])
    assert c["spearman"] == pytest.approx(1.0) and c["kendall"] == pytest.approx(1.0)
    assert math.isnan(c["pearson"])
    assert corr.top1_index([float("nan"), 1.0, 3.0, 3.0]) == 2


def test_regret_and_top_k_overlap_by_hand():
    true = [10.0, 20.0, 30.0, 40.0]
    assert corr.regret([4, 3, 2, 1], true) == pytest.approx(10.0 - 40.0)
    assert corr.regret([0, 0, 0, 5], true) == 0.0
    assert corr.regret([1, 1, 0, 0], true) == pytest.approx(15.0 - 40.0)   # tie: mean of 10 and 20
    # top-2 of the scores: {0, 3}; true top-2: {2, 3} -> one of two
    assert corr.top_k_overlap([9, 1, 2, 8], true, 2) == pytest.approx(0.5)
    assert corr.top_k_overlap([9, 1, 2, 8], true, 10) == 1.0               # k capped at n


# ------------------------------------------------------------------------------------- scorers

def test_the_torch_free_default_methods_are_the_registered_scorers():
    """EvaluationConfig's default methods (dass/evaluation/config.py, no torch) name every registered
    scorer, in the registry's order."""
    from dass.evaluation.config import BUILTIN_METHODS, EvaluationConfig
    assert list(BUILTIN_METHODS) == bl.builtin_scorers() == EvaluationConfig().methods


def test_every_builtin_scorer_scores_every_student(tiny):
    root, tasks = tiny
    ctx = bl.EvalContext(data_root=str(root / "data"), proxy_batch_size=8, progress=False)
    for key, task in saved(tasks).items():
        for name in bl.builtin_scorers():
            scorer = bl.make_scorer(name)
            if getattr(scorer, "needs_training_tasks", False):   # proxy_ensemble, encoding_ridge: fitted on
                continue                                         # meta_train tasks, which this database lacks
            s = bl.run_scorer(scorer, task, ctx)
            if name == "inherit" and key == "cub":   # an accuracy on noise with made-up labels: not computed
                assert s.shape == (8,) and np.isnan(s).all()
                continue
            assert s.shape == (8,) and np.isfinite(s).all(), (key, name)
    assert ctx.proxy_source["dtd"].startswith("train images of dtd (8 images)")
    assert ctx.proxy_source["cub"].startswith("noise")
    with pytest.raises(DassError, match="unknown method"):
        bl.make_scorer("zen")


def test_proxy_cache_returns_what_computing_returns_and_misses_on_any_changed_input(tiny, tmp_path):
    """Scores read from the cache equal those computed without it (archs_proxy called directly); a
    different batch, teacher or student list is a miss; a damaged entry is recomputed and rewritten."""
    from dass.proxies.batch import ProxySetting, archs_proxy
    root, tasks = tiny
    task = saved(tasks)["dtd"]
    cache = tmp_path / "cache"

    def ctx(**kw):
        return bl.EvalContext(data_root=str(root / "data"), proxy_batch_size=8, progress=False,
                              proxy_cache=str(cache), **kw)

    first = ctx()
    s1 = bl.make_scorer("naswot").score(task, first)
    assert first._cache.misses == 1 and len(list(cache.glob("dtd.naswot-*.json"))) == 1
    x, y = first.proxy_batch(task)
    d = tasks["dtd"]
    setting = ProxySetting(task.space, int(d["task"]["num_classes"]), first.teacher_state(task), d["remap"], "cpu")
    direct = archs_proxy("naswot", [Arch.from_dict(a) for a in d["students"]["arch"]], setting, (x, y))
    np.testing.assert_array_equal(s1, direct)
    again = ctx()
    np.testing.assert_array_equal(bl.make_scorer("naswot").score(task, again), direct)
    assert (again._cache.hits, again._cache.misses) == (1, 0)
    # another batch (seed) is another entry
    other = ctx(seed=5)
    bl.make_scorer("naswot").score(task, other)
    assert other._cache.misses == 1 and len(list(cache.glob("dtd.naswot-*.json"))) == 2
    # a teacher with other weights is another entry
    sd = {k: v.clone() for k, v in first.teacher_state(task).items()}
    sd["fc.bias"] += 1.0
    moved = ctx()
    moved.task_of(task).use_teacher(sd)
    bl.make_scorer("naswot").score(task, moved)
    assert moved._cache.misses == 1
    # a damaged entry: a warning, recomputed, rewritten
    for f in cache.glob("dtd.naswot-*.json"):
        f.write_text("{not json")
    fixed = ctx()
    np.testing.assert_array_equal(bl.make_scorer("naswot").score(task, fixed), direct)
    assert fixed._cache.misses == 1
    last = ctx()
    bl.make_scorer("naswot").score(task, last)
    assert (last._cache.hits, last._cache.misses) == (1, 0)


@pytest.mark.slow
def test_proxy_ensemble_trains_on_meta_train_and_scores_meta_test(tmp_path):
    splits = (("dtd", "meta_test"), ("a", "meta_train"), ("b", "meta_train"), ("c", "meta_valid"))
    tasks = write_tiny_db(tmp_path, tasks=splits, n_students=10)
    dtd = SavedTask.from_db(tasks["dtd"])
    ctx = bl.EvalContext(data_root=str(tmp_path / "none"), proxy_batch_size=4, progress=False)
    scorer = bl.make_scorer("proxy_ensemble")
    with pytest.raises(DassError, match="db="):
        scorer.score(dtd, ctx)
    ctx.db = str(tmp_path / "db")
    s = bl.run_scorer(scorer, dtd, ctx)
    assert s.shape == (10,) and np.isfinite(s).all()
    # the tiny database's accuracy grows with MACs (30 + 40 macs / teacher macs + noise): the chosen
    # ridge model ranks the meta-test students by it too
    assert corr.correlations(s, tasks["dtd"]["students"]["best_acc"].numpy())["spearman"] > 0.5
    assert "cost" in scorer.model.groups


def test_cost_oracle_and_random_scorers_against_the_database(tiny):
    _, tasks = tiny
    ctx = bl.EvalContext(seed=3)
    for d, task in zip(tasks.values(), saved(tasks).values()):
        st = d["students"]
        np.testing.assert_array_equal(bl.make_scorer("macs").score(task, ctx), st["macs"].numpy())
        np.testing.assert_array_equal(bl.make_scorer("params").score(task, ctx), st["params"].numpy())
        np.testing.assert_array_equal(bl.make_scorer("oracle").score(task, ctx), st["best_acc"].double().numpy())
    r = bl.make_scorer("random")
    a, b = saved(tasks)["dtd"], saved(tasks)["cub"]
    np.testing.assert_array_equal(r.score(a, ctx), r.score(a, bl.EvalContext(seed=3)))
    assert not np.allclose(r.score(a, ctx), r.score(b, ctx))
    assert not np.allclose(r.score(a, ctx), r.score(a, bl.EvalContext(seed=4)))


def test_noise_input_is_used_when_asked_and_teacher_errors_are_one_line(tiny, tmp_path):
    root, tasks = tiny
    ctx = bl.EvalContext(data_root=str(root / "data"), proxy_input="noise", proxy_batch_size=4)
    x, y = ctx.proxy_batch(saved(tasks)["dtd"])
    assert x.shape == (4, 3, 8, 8) and y.tolist() == [0, 1, 2, 3]
    assert ctx.proxy_source["dtd"].startswith("noise")
    missing = bl.EvalContext(teachers={"dtd": str(tmp_path / "none.pt")})
    with pytest.raises(DassError, match="teacher checkpoint not found"):
        missing.teacher_state(saved(tasks)["dtd"])


def _full_width_count(arch: Arch) -> int:
    return sum(w == TINY.stage_widths[s] for s, ws in enumerate(arch.widths) for w in ws)


def test_predictor_scorer_equals_a_hand_set_predictor(tiny, tmp_path):
    """An A-only predictor set to output tanh(0.1 * number of full-width blocks), with zero inner
    learning rates (adaptation changes nothing): the scorer must return exactly that."""
    _, tasks = tiny
    nd, nw, md = len(TINY.depths), len(TINY.width_mults), TINY.max_depth

    def edit(model):
        fc = model.arch_enc.fc
        fc.weight.zero_()
        fc.bias.zero_()
        for s in range(TINY.num_stages):           # one-hot slot of the full width of every block
            for b in range(md):
                fc.weight[0, s * (nd + md * nw) + nd + b * nw + nw - 1] = 0.1
        model.hidden.weight.zero_()
        model.hidden.bias.zero_()
        model.hidden.weight[0, 0] = 1.0
        model.out.weight.zero_()
        model.out.bias.zero_()
        model.out.weight[0, 0] = 1.0

    path = write_predictor(tmp_path / "a.pt", TINY, "A", inner_lr=0.0, edit=edit)
    scorer = bl.PredictorScorer("meta_nas_A", path)
    assert scorer.input_type == "A"
    for d, task in zip(tasks.values(), saved(tasks).values()):
        scorer.check_task(task)
        expected = [math.tanh(0.1 * _full_width_count(Arch.from_dict(a))) for a in d["students"]["arch"]]
        np.testing.assert_allclose(scorer.score(task, bl.EvalContext()), expected, rtol=1e-6)
    sta = bl.PredictorScorer("dass", write_predictor(tmp_path / "sta.pt", TINY, "DSTA"))
    assert bl.run_scorer(sta, saved(tasks)["cub"], bl.EvalContext()).shape == (8,)


def test_search_pool_and_picks_by_hand(tiny):
    _, tasks = tiny
    task = saved(tasks)["dtd"]
    t_macs = macs(teacher_arch(TINY), TINY, 5)
    m = tasks["dtd"]["students"]["macs"].numpy()
    acc = tasks["dtd"]["students"]["best_acc"].numpy().astype(float)
    pool = np.flatnonzero(m <= 0.5 * t_macs)
    np.testing.assert_array_equal(budget_pool(task, 0.5), pool)
    rows = search_rows(task, {"macs": m.astype(float)}, [0.5], "best_acc")
    by = {r["method"]: r for r in rows}
    assert by["macs"]["student"] == pool[np.argmax(m[pool])]
    assert by["best_ground_truth"]["db_acc"] == pytest.approx(acc[pool].max())
    assert by["macs"]["regret"] == pytest.approx(acc[by["macs"]["student"]] - acc[pool].max())


# ------------------------------------------------------------------------------------- tables

def test_markdown_bolds_the_best_of_each_column_but_never_the_oracle():
    rows = [{"label": "best_acc", "task": t, "method": m, "spearman": v}
            for (t, m, v) in [("a", "x", 0.5), ("a", "y", 0.7), ("a", "oracle", 1.0),
                              ("mean", "x", 0.5), ("mean", "y", float("nan")), ("mean", "oracle", 1.0)]]
    md = tables.correlations_markdown(rows, ["best_acc"], ["spearman"], ["a"], ["x", "y", "oracle"])
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert lines[0] == "| method | a | mean |"
    assert lines[2] == "| x | 0.500 | **0.500** |"
    assert lines[3] == "| y | **0.700** | nan |"
    assert lines[4] == "| oracle | 1.000 | 1.000 |"


# ------------------------------------------------------------------------------------- the entry

def _run(forked, *args, cwd):
    """``python -m dass.evaluation args`` (forked from a warm interpreter: conftest.py's ``forked``)."""
    return forked(["-m", "dass.evaluation", *args], cwd=cwd)


@pytest.mark.slow
def test_evaluate_writes_tables_plots_and_summary(tiny, tmp_path, forked):
    root, tasks = tiny
    pred = write_predictor(tmp_path / "dass.pt", TINY, "STA")
    run_dir = tmp_path / "run"
    p = _run(forked, "--config", str(REPO / "configs/evaluation/cpu.yaml"), f"db={root / 'db'}",
             f"data_root={root / 'data'}", f"run_dir={run_dir}", "proxy.batch_size=8", "progress=false",
             "methods=[random,macs,naswot,oracle]",
             f"predictors={{dass: {pred}, meta_nas_A: {tmp_path / 'missing.pt'}}}", "search_kd.enabled=true",
             "groups={just_cub: [cub]}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "meta_nas_A" in p.stderr and "not found" in p.stderr
    with open(run_dir / "correlations.csv") as f:
        rows = list(csv.DictReader(f))
    methods = {r["method"] for r in rows}
    assert methods == {"random", "macs", "naswot", "oracle", "dass"}
    for key, task in tasks.items():
        got = next(r for r in rows if r["task"] == key and r["method"] == "macs" and r["label"] == "best_acc")
        exp = stats.spearmanr(task["students"]["macs"].numpy(), task["students"]["best_acc"].numpy()).statistic
        assert float(got["spearman"]) == pytest.approx(exp)
        oracle = next(r for r in rows if r["task"] == key and r["method"] == "oracle" and r["label"] == "best_acc")
        assert float(oracle["spearman"]) == pytest.approx(1.0) and float(oracle["regret"]) == 0.0
    # a group of one task: its mean is that task's value, and so are both ends of its interval
    cub = next(r for r in rows if r["task"] == "cub" and r["method"] == "macs" and r["label"] == "best_acc")
    for name in ("mean:just_cub", "ci90_lo:just_cub", "ci90_hi:just_cub"):
        g = next(r for r in rows if r["task"] == name and r["method"] == "macs" and r["label"] == "best_acc")
        assert float(g["spearman"]) == pytest.approx(float(cub["spearman"])) and g["n"] == "1"
    md = (run_dir / "correlations.md").read_text()
    assert "| method | cub | dtd | mean:just_cub | mean | 90 % CI just_cub | 90 % CI |" in md and "**" in md
    pngs = sorted((run_dir / "plots").rglob("*.png"))
    assert len(pngs) == 2 * (len(methods) + 1)
    assert all(p_.read_bytes()[:8] == PNG_SIGNATURE for p_ in pngs)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["proxy_input"]["dtd"].startswith("train images")
    assert summary["proxy_input"]["cub"].startswith("noise")
    assert "meta_nas_A" in summary["skipped"] and summary["predictors"]["dass"]["input_type"] == "STA"
    assert summary["group_mean"]["best_acc"]["just_cub"]["macs"]["spearman"] == pytest.approx(float(cub["spearman"]))
    with open(run_dir / "search_kd.csv") as f:
        sk = list(csv.DictReader(f))
    t_macs = macs(teacher_arch(TINY), TINY, 5)
    for key, task in tasks.items():
        m, acc = task["students"]["macs"].numpy(), task["students"]["best_acc"].numpy()
        best = next(r for r in sk if r["task"] == key and r["method"] == "best_ground_truth" and r["budget"] == "0.5")
        assert float(best["db_acc"]) == pytest.approx(float(acc[m <= 0.5 * t_macs].max()))
    assert (run_dir / "search_kd.md").read_text().startswith("# Search then KD")


def _main_in_process(*args) -> int:
    from dass.cli import make_parser, run_main
    from dass.evaluation.__main__ import main
    with pytest.raises(SystemExit) as e:
        run_main(main, list(args), make_parser("python -m dass.evaluation", ""))
    return e.value.code


def test_evaluate_fails_in_one_line_before_work(tmp_path, tiny, capsys):
    root, _ = tiny
    assert _main_in_process(f"db={tmp_path / 'nope'}", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: database folder not found")
    assert _main_in_process(f"db={root / 'db'}", "methods=[macs,zen]", f"run_dir={tmp_path / 'run'}") == 2
    assert "unknown method 'zen'" in capsys.readouterr().err
    assert _main_in_process(f"db={root / 'db'}", "teachers.dtd=/no/such.pt", f"run_dir={tmp_path / 'run'}") == 2
    assert "teacher checkpoint not found" in capsys.readouterr().err
    assert _main_in_process(f"db={root / 'db'}", "groups={weak: [dtd, nope]}", f"run_dir={tmp_path / 'run'}") == 2
    assert "groups.weak: task 'nope'" in capsys.readouterr().err
    assert _main_in_process(f"db={root / 'db'}", "groups={'a:b': [dtd]}", f"run_dir={tmp_path / 'run'}") == 2
    assert "without ':'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_proxy_ensemble_fits_on_another_database_with_train_db(tmp_path, capsys):
    """Evaluating a database of meta-test tasks only (a user's own tasks): the proxy ensemble needs
    training tasks; train_db names the database it is fitted on."""
    write_tiny_db(tmp_path / "mine", tasks=(("dtd", "meta_test"),), n_students=10)
    write_tiny_db(tmp_path / "shipped", tasks=(("a", "meta_train"), ("b", "meta_train"), ("c", "meta_valid")),
                  n_students=10)
    args = [f"db={tmp_path / 'mine' / 'db'}", f"data_root={tmp_path / 'none'}", "methods=[macs,proxy_ensemble]",
            "plots=false", "progress=false", "proxy.batch_size=4"]
    assert _main_in_process(*args, f"run_dir={tmp_path / 'r1'}") == 2
    assert "train_db=" in capsys.readouterr().err
    assert _main_in_process(*args, f"train_db={tmp_path / 'shipped' / 'db'}", f"run_dir={tmp_path / 'r2'}") == 0
    with open(tmp_path / "r2" / "correlations.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "proxy_ensemble" and r["label"] == "best_acc"]
    assert [r["task"] for r in rows][0] == "dtd" and math.isfinite(float(rows[0]["spearman"]))


@pytest.mark.slow
def test_proxies_of_a_task_without_its_teacher_come_from_the_cache_by_the_recorded_digest(tmp_path, capsys):
    """The shipped case: meta-train teachers left git, the proxy cache holds their students' proxies.
    With the teacher gone and the digest recorded, the evaluation reads the same scores from the
    cache (read-only, nothing computed) as it computed with the teacher; an entry the cache lacks is
    a one-line error that names the task, the proxy and the missing checkpoint."""
    from dass.database.format import load_task_db, save_task_db
    from dass.database.merge import record_teacher_digests
    write_tiny_db(tmp_path / "mine", tasks=(("dtd", "meta_test"),), n_students=10)
    write_tiny_db(tmp_path / "shipped", tasks=(("a", "meta_train"), ("b", "meta_train"), ("c", "meta_valid")),
                  n_students=10)
    record_teacher_digests(tmp_path / "shipped" / "db")
    args = [f"db={tmp_path / 'mine' / 'db'}", f"train_db={tmp_path / 'shipped' / 'db'}", f"data_root={tmp_path / 'none'}",
            "methods=[naswot,proxy_ensemble]", "plots=false", "progress=false", "proxy.batch_size=4",
            "search_kd.enabled=false", "proxy.read_only_caches=[]"]
    assert _main_in_process(*args, f"proxy.cache={tmp_path / 'cache'}", f"run_dir={tmp_path / 'r1'}") == 0

    def scores(run):
        with open(tmp_path / run / "scores.csv") as f:
            rows = list(csv.DictReader(f))
        assert rows and all(r["score_naswot"] and r["score_proxy_ensemble"] for r in rows)
        return [(r["student"], r["score_naswot"], r["score_proxy_ensemble"]) for r in rows]

    for k in ("a", "b", "c"):
        (tmp_path / "shipped" / "teachers" / f"{k}.pt").unlink()
    # without the teachers, the written cache only read: the same scores
    assert _main_in_process(*args, "proxy.cache=", f"proxy.read_only_caches=[{tmp_path / 'cache'}]",
                            f"run_dir={tmp_path / 'r2'}") == 0
    assert scores("r2") == scores("r1")
    # an empty cache: one line, naming what is missing
    capsys.readouterr()
    assert _main_in_process(*args, f"proxy.cache={tmp_path / 'empty'}", f"run_dir={tmp_path / 'r3'}") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and err[0].startswith("error: task a: proxy ") and "is not in the proxy cache" in err[0]
    assert "teacher checkpoint, not found" in err[0]
    # a task file without the digest still needs its teacher, before any work
    d = load_task_db(tmp_path / "shipped" / "db" / "a.pt")
    del d["teacher"]["proxy_digest"]
    save_task_db(d, tmp_path / "shipped" / "db" / "a.pt")
    assert _main_in_process(*args, f"proxy.read_only_caches=[{tmp_path / 'cache'}]", f"run_dir={tmp_path / 'r4'}") == 2
    assert "task a: teacher checkpoint not found" in capsys.readouterr().err
