"""The evaluation stage (``python -m dass.evaluation --config configs/evaluation/cpu.yaml db=<db folder>
[predictors='{dass: <ckpt>}']``; :func:`run` is its public entry).

Ranks the students of every meta-test task of a database with each method (baselines of
:mod:`dass.evaluation.baselines` and meta-trained predictors) and compares the scores with the
students' true KD accuracies. Writes into ``run_dir``:

* ``scores.csv``: one row per (task, student): architecture, MACs, params, true accuracies and
  ``score_<method>`` for every method;
* ``correlations.csv``: one row per (label, task, method) with ``spearman``, ``kendall``,
  ``pearson``, ``partial_spearman`` (Spearman controlled for MACs, see
  :mod:`dass.correlation`), ``regret`` (true accuracy of the top-1 minus the best,
  points), ``top<k>_overlap`` and ``n``; rows with ``task = mean`` average over tasks (skipping
  ``nan``), rows ``ci90_lo`` / ``ci90_hi`` bound that mean (percentile bootstrap over tasks, 90 %);
* ``correlations.md``: the same as markdown tables (rows = methods, columns = tasks + mean + its
  90 % interval, best per column in bold, the oracle never bold);
* ``plots/<task>/<method>.png`` (score vs true accuracy) and ``plots/<task>/macs_plane.png``
  (students in the MACs / accuracy plane, each method's top-1 pick and the best student marked);
* with ``search_kd.enabled``: ``search_kd.csv`` and ``search_kd.md`` (see
  :mod:`dass.evaluation.search_kd`), KD runs under ``search_kd_runs/`` when ``search_kd.train``;
* ``summary.json``: inputs, which image batch the proxies saw per task, skipped methods, per-task and
  mean metrics, seconds per method; ``config.yaml`` and ``evaluation.log``.

Every input is checked before any scoring (DassError, exit 2): the database, the methods, the
teachers the proxies need, the recipe and the data of ``search_kd.train``. A predictor whose
checkpoint file does not exist is skipped with a warning.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import correlation as corr
from .. import hashing, runid
from ..cli import setup_run_dir
from ..config import to_dict
from ..data.registry import dataset_info
from ..database.format import db_file_hashes
from ..database.saved import SavedTask, load_saved_tasks
from ..device import resolve_device
from ..errors import DassError
from ..io import atomic_write_json, atomic_write_text, write_csv
from . import baselines as bl
from . import plots, search_kd, tables
from .config import EvaluationConfig

log = logging.getLogger("dass.evaluation")


@dataclass
class Plan:
    """Everything checked and loaded before scoring starts."""
    cfg: EvaluationConfig
    tasks: list[SavedTask]
    scorers: list[bl.Scorer]
    context: bl.EvalContext
    skipped: dict[str, str]
    search_methods: list[str]
    recipes: dict


def _select_tasks(cfg: EvaluationConfig) -> list[SavedTask]:
    cfg.check()
    tasks = load_saved_tasks(cfg.db, splits=(cfg.split,))[cfg.split]
    keys = [t.key for t in tasks]
    unknown = [k for k in cfg.tasks if k not in keys]
    if unknown:
        raise DassError(f"{cfg.db}: no {cfg.split} task '{unknown[0]}' (tasks: {', '.join(keys)})")
    chosen = [k for k in keys if not cfg.tasks or k in cfg.tasks]
    for group, members in cfg.groups.items():
        outside = [k for k in members if k not in chosen]
        if outside:
            raise DassError(f"groups.{group}: task '{outside[0]}' is not among the evaluated {cfg.split} tasks")
    return [t for t in tasks if t.key in chosen]


def _scorers(cfg: EvaluationConfig, tasks: list[SavedTask], device) -> tuple[list[bl.Scorer], dict[str, str]]:
    scorers = [bl.make_scorer(m) for m in cfg.methods]
    skipped = {}
    for name, path in cfg.predictors.items():
        if name in bl.builtin_scorers():
            raise DassError(f"predictors: name '{name}' is already a built-in method; choose another")
        if not Path(path).is_file():
            log.warning("method %s skipped: predictor checkpoint not found: %s", name, path)
            skipped[name] = f"checkpoint not found: {path}"
            continue
        scorer = bl.PredictorScorer(name, path, device)
        for t in tasks:
            scorer.check_task(t)
        scorers.append(scorer)
    if not scorers:
        raise DassError("no method to evaluate (methods is empty and no predictor checkpoint was found)")
    return scorers, skipped


def _check_search(cfg: EvaluationConfig, tasks, names: list[str], skipped, context) -> tuple[list[str], dict]:
    sk = cfg.search_kd
    if not sk.enabled:
        return [], {}
    methods = []
    for m in sk.methods or names:
        if m in skipped:
            continue
        if m not in names:
            raise DassError(f"search_kd.methods: '{m}' is not an evaluated method ({', '.join(names)})")
        methods.append(m)
    recipes = {}
    if sk.train:
        for t in tasks:
            recipes[t.key] = search_kd.load_recipe(sk.kd_recipe, t)
            context.teacher_state(t)
            info = dataset_info(t.dataset, cfg.data_root)
            if info["num_classes"] != t.num_classes:
                raise DassError(f"task {t.key}: dataset {info['name']} has {info['num_classes']} classes, "
                                f"the task {t.num_classes}")
    return methods, recipes


def prepare(cfg: EvaluationConfig) -> Plan:
    """Check and load every input (DassError on the first problem), before any work."""
    tasks = _select_tasks(cfg)
    device = resolve_device(cfg.device)
    scorers, skipped = _scorers(cfg, tasks, device)
    context = bl.EvalContext(data_root=cfg.data_root, device=device, seed=cfg.seed, label=cfg.labels[0],
                             proxy_input=cfg.proxy.input, proxy_batch_size=cfg.proxy.batch_size,
                             teachers=dict(cfg.teachers), progress=cfg.progress, db=cfg.train_db or cfg.db,
                             proxy_cache=cfg.proxy.cache, proxy_read_only_caches=tuple(cfg.proxy.read_only_caches))
    keys = {t.key for t in tasks}
    stray = [k for k in cfg.teachers if k not in keys]
    if stray:
        raise DassError(f"teachers: '{stray[0]}' is not an evaluated task")
    if any(s.needs_teacher for s in scorers):
        for t in tasks:
            context.check_proxy_teacher(t)
    fitted = [s for s in scorers if getattr(s, "needs_training_tasks", False)]
    if fitted:
        hint = "train_db=<folder> names another database to fit it on"
        names = " and ".join(s.name for s in fitted)
        try:
            train = load_saved_tasks(context.db, splits=("meta_train", "meta_valid"))
        except DassError as e:
            raise DassError(f"{names} needs meta_train tasks: {e} ({hint})") from None
        if not train["meta_train"]:
            raise DassError(f"{context.db}: {names} needs meta_train tasks, the database has none ({hint})")
        if any(s.needs_teacher for s in fitted):
            for t in train["meta_train"] + train["meta_valid"]:
                context.check_proxy_teacher(t)
    search_methods, recipes = _check_search(cfg, tasks, [s.name for s in scorers], skipped, context)
    return Plan(cfg, tasks, scorers, context, skipped, search_methods, recipes)


# ------------------------------------------------------------------------------------------- work

def score_all(plan: Plan) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float]]:
    """``scores[task key][method]`` and the seconds each method took over all tasks."""
    scores: dict[str, dict[str, np.ndarray]] = {}
    seconds = {s.name: 0.0 for s in plan.scorers}
    for task in plan.tasks:
        key = task.key
        scores[key] = {}
        for s in plan.scorers:
            t0 = time.perf_counter()
            scores[key][s.name] = bl.run_scorer(s, task, plan.context)
            seconds[s.name] += time.perf_counter() - t0
            log.info("task %s: %s scored %d students in %.1f s", key, s.name, len(scores[key][s.name]),
                     time.perf_counter() - t0)
    return scores, seconds


def metric_names(top_k: int) -> list[str]:
    return list(corr.METRICS) + [corr.PARTIAL, "regret", f"top{top_k}_overlap"]


def _task_metrics(pred: np.ndarray, true: np.ndarray, macs: np.ndarray, top_k: int, where: str) -> dict[str, float]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = corr.correlations(pred, true)
        out[corr.PARTIAL] = corr.partial_spearman(pred, true, macs)
    for w in caught:
        log.warning("%s: %s", where, w.message)
    out["regret"] = corr.regret(pred, true)
    out[f"top{top_k}_overlap"] = corr.top_k_overlap(pred, true, top_k)
    return out


def correlation_rows(plan: Plan, scores) -> list[dict]:
    cfg = plan.cfg
    names = metric_names(cfg.top_k)
    rows = []
    for label in cfg.labels:
        for s in plan.scorers:
            per_task = []
            for task in plan.tasks:
                key = task.key
                m = _task_metrics(scores[key][s.name], task.accuracy(label),
                                  search_kd.student_macs(task), cfg.top_k, f"task {key}, {s.name} vs {label}")
                per_task.append(m)
                rows.append({"label": label, "task": key, "method": s.name, **m, "n": len(task)})
            keys = [t.key for t in plan.tasks]
            for group, members in [*cfg.groups.items(), ("", keys)]:
                part = [m for k, m in zip(keys, per_task) if k in members]
                rows.append({"label": label, "task": tables.group_row("mean", group), "method": s.name,
                             **{k: corr.nanmean(m[k] for m in part) for k in names}, "n": len(part)})
                ci = {k: corr.bootstrap_interval([m[k] for m in part], seed=cfg.seed) for k in names}
                for side, name in enumerate(tables.CI_ROWS):
                    rows.append({"label": label, "task": tables.group_row(name, group), "method": s.name,
                                 **{k: v[side] for k, v in ci.items()}, "n": len(part)})
    return rows


def write_scores(path, plan: Plan, scores) -> None:
    rows = []
    for task in plan.tasks:
        key = task.key
        best, final = task.label("best_acc"), task.label("final_acc")
        for i, arch in enumerate(task.archs):
            row = {"task": key, "student": i, "arch": str(arch), "macs": int(task.macs[i]),
                   "params": int(task.params[i]), "best_acc": float(best[i]), "final_acc": float(final[i])}
            row.update({f"score_{m}": float(v[i]) for m, v in scores[key].items()})
            rows.append(row)
    write_csv(path, rows)


def draw_plots(plan: Plan, scores, rows: list[dict], out_dir: Path) -> int:
    label = plan.cfg.labels[0]
    n = 0
    for task in plan.tasks:
        key = task.key
        true = task.accuracy(label)
        folder = out_dir / plots.safe_name(key)
        for method, s in scores[key].items():
            c = next(r for r in rows if r["label"] == label and r["task"] == key and r["method"] == method)
            plots.scatter_plot(folder / f"{plots.safe_name(method)}.png", s, true, f"{key}: {method}",
                               f"{method} score", f"true {label} (%)", {m: c[m] for m in corr.METRICS})
            n += 1
        picks = {m: corr.top1_index(s) for m, s in scores[key].items() if m != "oracle"}
        plots.plane_plot(folder / "macs_plane.png", search_kd.student_macs(task), true, picks,
                         f"{key}: top-1 pick of each method", f"true {label} (%)")
        n += 1
    return n


def run_search_kd(plan: Plan, scores, run_dir: Path) -> list[dict]:
    cfg = plan.cfg
    rows = []
    for task in plan.tasks:
        key = task.key
        chosen = {m: scores[key][m] for m in plan.search_methods}
        rows += search_kd.search_rows(task, chosen, cfg.search_kd.budgets, cfg.labels[0])
    if cfg.search_kd.train:
        search_kd.train_picks(rows, {t.key: t for t in plan.tasks}, plan.recipes, cfg.search_kd.seeds,
                              plan.context, run_dir / "search_kd_runs")
    write_csv(run_dir / "search_kd.csv", rows)
    columns = list(dict.fromkeys(r["column"] for r in rows))
    methods = plan.search_methods + [search_kd.BEST]
    notes = [f"Pool: the database students with MACs <= budget x the teacher's MACs; accuracy label "
             f"`{cfg.labels[0]}`."]
    if cfg.search_kd.train:
        notes.append(f"KD: seeds {cfg.search_kd.seeds}, recipe {cfg.search_kd.kd_recipe or 'of the task file'}; "
                     f"mean ± sample std over seeds.")
    atomic_write_text(run_dir / "search_kd.md",
                      tables.search_kd_markdown(rows, methods, columns, cfg.search_kd.train, notes=notes))
    return rows


def run_plan(plan: Plan, run_dir) -> dict:
    """Score, compare and write every output of a prepared plan into ``run_dir``; returns the summary
    (``summary.json``)."""
    cfg = plan.cfg
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    scores, seconds = score_all(plan)
    write_scores(run_dir / "scores.csv", plan, scores)
    rows = correlation_rows(plan, scores)
    names = metric_names(cfg.top_k)
    write_csv(run_dir / "correlations.csv", rows, ["label", "task", "method"] + names + ["n"])
    keys = [t.key for t in plan.tasks]
    methods = [s.name for s in plan.scorers]
    notes = ["Means skip tasks where a metric is undefined (nan: constant scores). `oracle` scores the "
             f"true `{cfg.labels[0]}` (a bound, never bold)."]
    notes += [f"Proxy input of {k}: {v}." for k, v in plan.context.proxy_source.items()]
    notes += [f"Skipped {k}: {v}." for k, v in plan.skipped.items()]
    atomic_write_text(run_dir / "correlations.md",
                      tables.correlations_markdown(rows, cfg.labels, names, keys, methods, notes=notes,
                                                   groups=list(cfg.groups)))
    n_plots = draw_plots(plan, scores, rows, run_dir / "plots") if cfg.plots else 0
    search_rows = run_search_kd(plan, scores, run_dir) if cfg.search_kd.enabled else []
    summary = {
        "db": cfg.db, "split": cfg.split, "tasks": keys, "methods": methods, "skipped": plan.skipped,
        "predictors": {s.name: {"path": str(s.path), "input_type": s.input_type}
                       for s in plan.scorers if isinstance(s, bl.PredictorScorer)},
        "proxy_input": plan.context.proxy_source, "device": str(plan.context.device),
        "fitted_models": {s.name: s.model.describe() for s in plan.scorers
                          if isinstance(s, bl.FittedScorer) and s.model is not None},
        "mean": {label: {r["method"]: {k: r[k] for k in names} for r in rows
                         if r["label"] == label and r["task"] == "mean"} for label in cfg.labels},
        "group_mean": {label: {g: {r["method"]: {k: r[k] for k in names} for r in rows
                                   if r["label"] == label and r["task"] == tables.group_row("mean", g)}
                               for g in cfg.groups} for label in cfg.labels},
        "per_task": rows, "seconds": seconds, "plots": n_plots,
        "search_kd": search_rows, "wall_s": time.perf_counter() - t0,
        "config": to_dict(cfg),
    }
    atomic_write_json(run_dir / "summary.json", summary)
    return summary


def identity(cfg: EvaluationConfig) -> dict:
    """The run identity (dass.runid): the config, less where it writes and how it shows progress,
    plus the bytes of the database task files, predictors and teacher overrides it reads."""
    preds = {k: hashing.file_hash(p) for k, p in cfg.predictors.items() if Path(p).is_file()}
    return runid.identity("evaluation", cfg, db=db_file_hashes(cfg.db),
                          **({"train_db": db_file_hashes(cfg.train_db)}
                             if cfg.train_db else {}),
                          predictors=preds, teachers={k: hashing.file_hash(p) for k, p in cfg.teachers.items()})


def run(cfg: EvaluationConfig) -> dict:
    """Check every input (:func:`prepare`), claim the run folder, run the plan; prints the mean
    correlations of the first label and returns the summary with ``run_dir``."""
    plan = prepare(cfg)
    ident = identity(cfg)
    run_dir = setup_run_dir(cfg.run_dir or Path("runs") / "evaluation" / f"{cfg.split}-{runid.short(ident)}", cfg,
                            "evaluation", identity=ident)
    summary = run_plan(plan, run_dir)
    label = cfg.labels[0]
    for method, m in summary["mean"][label].items():
        print(f"{method:>16s}  spearman {m['spearman']:+.3f}  partial (MACs) {m[corr.PARTIAL]:+.3f}  "
              f"kendall {m['kendall']:+.3f}  pearson {m['pearson']:+.3f}  regret {m['regret']:+.2f}")
    print(f"results: {run_dir}")
    return {**summary, "run_dir": str(run_dir)}
