"""Predictor designs on one database: meta-train each design with several seeds, then tabulate.

    python bench/predictor_designs.py --db assets/cpu/db --out runs/predictor_designs [--jobs 2]
    bash script/predictor_designs.sh [db] [out]          # the same, with the defaults above

Every design is ``configs/predictor/paper.yaml`` plus explicit overrides (so the table does not
change when a profile's defaults change; ``paper (300 episodes)`` is the paper's recipe cut to the
episodes of the others, ``paper.yaml`` itself runs 1000), meta-trained with seeds 0, 1, 2 into
``<out>/<design>/seed<k>`` (``dass.predictor``; a finished run, one with ``metrics.json``, is not
redone, an interrupted one resumes). For each design the table gives, over the seeds, the mean and
the sample std of:

* meta-valid / meta-test mean Spearman over tasks (the checkpoint is chosen on meta-valid);
* meta-test mean partial Spearman controlled for MACs (:func:`dass.correlation.partial_spearman`);
* the mean absolute error (points) of the predicted accuracy on meta-test tasks;

plus the 90 % bootstrap interval over meta-test tasks of the seed-averaged per-task Spearman, and
the Spearman of the 3-seed ensemble (per-task z-scored outputs of the seeds averaged). Reference
rows (no training): log MACs, log params, and NASWOT and synflow (from the proxy designs' cache).
Designs are compared on meta-valid only; meta-test is reported, read-only. Writes ``<out>/designs.md`` and ``<out>/designs.json`` and prints the table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dass.correlation import PARTIAL, bootstrap_interval, nanmean  # noqa: E402
from dass.evaluation.tables import fmt, markdown_table  # noqa: E402
from dass.io import atomic_write_json, atomic_write_text  # noqa: E402
from dass.predictor.adapt import predict_task  # noqa: E402
from dass.predictor.data import cost_features, load_tasks  # noqa: E402
from dass.predictor.meta_train import accuracy_errors  # noqa: E402
from dass.predictor.metrics import task_metrics  # noqa: E402
from dass.predictor.checkpoint import load_predictor  # noqa: E402

BASE = "configs/predictor/paper.yaml"
CPU = ["target=standardized", "cost_features=true", "first_order=true", "episodes=300"]
PRIOR = ["cost_prior=true", "eval_at_start=true"]
# name -> overrides of BASE
PROXIES = ["proxies=[naswot,synflow]"]
ONEHOT = ["prior_onehot=true"]
STAGE = ["stage_features=true"]
TREES = ["prior_model=trees"]
DESIGNS = {
    "paper (300 episodes)": ["episodes=300"],
    "cpu_v1 (previous default)": CPU,
    "prior": CPU + PRIOR,
    "prior+proxies": CPU + PRIOR + PROXIES,
    "prior+diswot": CPU + PRIOR + ["proxies=[diswot]"],
    "onehot prior": CPU + PRIOR + ONEHOT,
    "onehot prior+diswot": CPU + PRIOR + ONEHOT + ["proxies=[diswot]"],
    "onehot prior+proxies+diswot": CPU + PRIOR + ONEHOT + ["proxies=[naswot,synflow,diswot]"],
    "stage prior": CPU + PRIOR + STAGE,
    "stage prior+naswot": CPU + PRIOR + STAGE + ["proxies=[naswot]"],
    "stage prior+proxies+diswot": CPU + PRIOR + STAGE + ["proxies=[naswot,synflow,diswot]"],
    "stage prior+inherit": CPU + PRIOR + STAGE + ["proxies=[inherit]"],
    "stage prior+naswot+inherit": CPU + PRIOR + STAGE + ["proxies=[naswot,inherit]"],
    "A (KD-unaware)": CPU + ["input_type=A"],
    "trees prior": CPU + PRIOR + STAGE + TREES,
    "trees prior+proxies": CPU + PRIOR + STAGE + TREES + PROXIES,
    "trees onehot prior+proxies": CPU + PRIOR + STAGE + TREES + ONEHOT + PROXIES,
    "trees onehot prior+proxies+teacher_acc": CPU + PRIOR + STAGE + TREES + ONEHOT + PROXIES
    + ["task_stats=[teacher_acc]"],
    "trees onehot prior+proxies+task_stats": CPU + PRIOR + STAGE + TREES + ONEHOT + PROXIES
    + ["task_stats=[teacher_acc,log_classes]"],
    "cpu_v1+rank loss": CPU + ["rank_loss_weight=1.0"],
    "cpu_v1 DSTA (dataset encoder)": CPU + ["input_type=DSTA"],
}
# the designs run by default: the paper's recipe, the KD-unaware A, the previous default and each
# idea once; the other entries are further proxy combinations of the same ideas (``--designs``)
DEFAULT_DESIGNS = ["paper (300 episodes)", "cpu_v1 (previous default)", "cpu_v1+rank loss",
                   "cpu_v1 DSTA (dataset encoder)", "prior", "prior+proxies", "onehot prior", "stage prior",
                   "stage prior+inherit", "stage prior+naswot+inherit", "A (KD-unaware)", "trees prior",
                   "trees prior+proxies", "trees onehot prior+proxies"]
SEEDS = (0, 1, 2)


def folder(name: str) -> str:
    return "".join(c if c.isalnum() or c in "+-_" else "_" for c in name).strip("_")


def run_all(db: str, out: Path, designs: dict, seeds, jobs: int, data_root: str) -> None:
    """Meta-train every (design, seed) not finished yet, ``jobs`` processes at a time."""
    # seed-major: an interrupted sweep leaves every design with its first seeds, not some designs with none
    todo = [(n, s) for s in seeds for n in designs if not (out / folder(n) / f"seed{s}" / "metrics.json").is_file()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    running: list[tuple[subprocess.Popen, str]] = []
    while todo or running:
        while todo and len(running) < jobs:
            name, seed = todo.pop(0)
            run_dir = out / folder(name) / f"seed{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "dass.predictor", "--config", str(ROOT / BASE), f"db={db}",
                   f"run_dir={run_dir}", f"seed={seed}", "progress=false", f"data_root={data_root}",
                   f"proxy_cache={out / 'proxy_cache'}", *designs[name]]
            log = open(run_dir / "stdout.log", "w")
            running.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
                            f"{name} seed {seed}"))
            print(f"started {name} seed {seed}", flush=True)
        time.sleep(2)
        for p, what in list(running):
            if p.poll() is not None:
                running.remove((p, what))
                if p.returncode != 0:
                    raise SystemExit(f"error: {what} failed (exit {p.returncode}), see its stdout.log")
                print(f"finished {what}", flush=True)


def zscore(v: torch.Tensor) -> torch.Tensor:
    return (v - v.mean()) / v.std().clamp_min(1e-12)


def split_metrics(preds: dict[str, torch.Tensor], tasks) -> dict[str, dict[str, float]]:
    return {t.key: task_metrics(preds[t.key], t) for t in tasks}


def means(per_task: dict) -> dict[str, float]:
    return {k: nanmean(m[k] for m in per_task.values()) for k in ("spearman", PARTIAL)}


def use_proxies(tasks, all_proxy: dict, names: list[str], wanted: list[str]) -> None:
    """Give every task the proxy columns ``wanted`` (in that order) out of ``all_proxy[key]``, whose
    columns are ``names``; the tasks' cached inputs are dropped, since they hold the old columns."""
    for t in tasks:
        t.proxy = all_proxy[t.key][:, [names.index(n) for n in wanted]] if wanted and all_proxy else None
        t._cache.clear()


def design_row(out: Path, name: str, seeds, tasks, all_proxy: dict, names: list[str]) -> dict:
    """One design's row, from its finished seeds' ``best.pt`` evaluated on the database's tasks as
    they are now (so runs meta-trained before the last meta-test tasks were built are measured on
    all of them; meta-training reads only meta-train and meta-valid tasks)."""
    done = [s for s in seeds if (out / folder(name) / f"seed{s}" / "metrics.json").is_file()]
    if not done:
        return {"design": name, "seeds": []}
    per_seed, outputs, maes = [], [], []
    for s in done:
        p = load_predictor(out / folder(name) / f"seed{s}" / "best.pt")
        use_proxies(tasks["meta_valid"] + tasks["meta_test"], all_proxy, names, list(p.model.cfg.proxies))
        o = {t.key: predict_task(p.model, p.inner_lrs, p.target, int(p.adapt["steps"]), t)
             for split in ("meta_valid", "meta_test") for t in tasks[split]}
        outputs.append(o)
        per_seed.append({split: split_metrics(o, tasks[split]) for split in ("meta_valid", "meta_test")})
        maes.append(nanmean(accuracy_errors(p, tasks["meta_test"], o).values()) if tasks["meta_test"]
                    else float("nan"))
    row = {"design": name, "seeds": done}

    def mean_sd(v):
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")

    for split in ("meta_valid", "meta_test"):
        vals = [means(m[split]) for m in per_seed]
        for k in ("spearman", PARTIAL):
            row[f"{split}_{k}"] = mean_sd([x[k] for x in vals])
    row["meta_test_mae"] = mean_sd(maes)
    task_mean = [np.mean([m["meta_test"][t.key]["spearman"] for m in per_seed]) for t in tasks["meta_test"]]
    row["meta_test_ci"] = bootstrap_interval(task_mean)
    for split in ("meta_valid", "meta_test"):
        ens = {t.key: torch.stack([zscore(o[t.key]) for o in outputs]).mean(0) for t in tasks[split]}
        row[f"ensemble_{split}"] = means(split_metrics(ens, tasks[split]))["spearman"]
    row["best_episodes"] = [json.loads((out / folder(name) / f"seed{s}" / "metrics.json").read_text())["best_episode"]
                            for s in done]
    return row


def cost_row(name: str, column: int, tasks, proxy: bool = False) -> dict:
    """A training-free reference: a cost column, or (``proxy``) a column of the proxy features."""
    row = {"design": name}
    for split in ("meta_valid", "meta_test"):
        preds = {t.key: t.proxy[:, column] if proxy else cost_features(t.archs, t.space, t.num_classes)[:, column]
                 for t in tasks[split]}
        per = split_metrics(preds, tasks[split])
        for k, v in means(per).items():
            row[f"{split}_{k}"] = (v, float("nan"))
        if split == "meta_test":
            row["meta_test_ci"] = bootstrap_interval([m["spearman"] for m in per.values()])
    return row


def table(rows: list[dict], designs: dict) -> str:
    def ms(v):
        return fmt(v[0]) if not np.isfinite(v[1]) else f"{fmt(v[0])} ± {fmt(v[1])}"
    header = ["design", "overrides of paper.yaml", "seeds", "meta-valid Spearman", "meta-test Spearman",
              "90 % CI (test)", "meta-test partial (MACs)", "seed ensemble valid / test", "pred_acc MAE test (points)"]
    lines = []
    for r in rows:
        if r.get("seeds") == []:
            continue   # no finished run yet
        ov = " ".join(designs.get(r["design"], [])) or ("(none)" if r["design"] in designs else "no training")
        ens = (f"{fmt(r['ensemble_meta_valid'])} / {fmt(r['ensemble_meta_test'])}" if "ensemble_meta_test" in r
               else "")
        mae = ms(r["meta_test_mae"]) if "meta_test_mae" in r else ""
        ci = r["meta_test_ci"]
        seeds = ",".join(str(x) for x in r["seeds"]) if "seeds" in r else ""
        lines.append([r["design"], f"`{ov}`", seeds, ms(r["meta_valid_spearman"]), ms(r["meta_test_spearman"]),
                      f"[{fmt(ci[0])}, {fmt(ci[1])}]", ms(r[f"meta_test_{PARTIAL}"]), ens, mae])
    return markdown_table(header, lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="assets/cpu/db")
    ap.add_argument("--out", default="runs/predictor_designs")
    ap.add_argument("--jobs", type=int, default=2, help="meta-training processes at a time")
    ap.add_argument("--data-root", default="data", help="datasets of the tasks (proxy inputs need images)")
    ap.add_argument("--designs", nargs="*", default=DEFAULT_DESIGNS,
                    help=f"design names (default: {len(DEFAULT_DESIGNS)} of the {len(DESIGNS)} known)")
    ap.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    ap.add_argument("--extra", nargs="*", default=[], help="overrides appended to every design (smoke tests)")
    ap.add_argument("--table-only", action="store_true",
                    help="train nothing: tabulate the finished runs (a design's finished seeds) on --db")
    args = ap.parse_args()
    unknown = [d for d in args.designs if d not in DESIGNS]
    if unknown:
        print(f"error: unknown design '{unknown[0]}' (known: {', '.join(DESIGNS)})", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    out = Path(args.out)
    designs = {d: DESIGNS[d] + args.extra for d in args.designs}
    _, tasks = load_tasks(args.db)
    from dass.predictor import proxy_inputs
    from dass.predictor.config import PROXY_INPUTS
    names = list(PROXY_INPUTS)
    uses_proxies = any(any(o.startswith("proxies=") and o != "proxies=[]" for o in ov) for ov in designs.values())
    has_proxies = uses_proxies or (out / "proxy_cache").is_dir()
    all_proxy = {}
    if has_proxies:
        # every proxy input of every task once, into the cache the runs then read (instead of each run
        # computing the same columns); the same features give the designs' inputs and the proxy rows
        print("proxy inputs of the database's tasks ...", flush=True)
        every = tasks["meta_train"] + tasks["meta_valid"] + tasks["meta_test"]
        proxy_inputs.attach(every, names, args.data_root, 32, 0, out / "proxy_cache")
        all_proxy = {t.key: t.proxy for t in every}
    if not args.table_only:
        run_all(args.db, out, designs, args.seeds, args.jobs, args.data_root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [design_row(out, d, args.seeds, tasks, all_proxy, names) for d in designs]
        rows += [cost_row("log MACs", 0, tasks), cost_row("log params", 1, tasks)]
        if has_proxies:
            use_proxies(tasks["meta_valid"] + tasks["meta_test"], all_proxy, names, names)
            rows += [cost_row(n, i, tasks, proxy=True) for i, n in enumerate(names)]
    md = (f"Database `{args.db}`: {len(tasks['meta_train'])} meta-train, {len(tasks['meta_valid'])} meta-valid, "
          f"{len(tasks['meta_test'])} meta-test tasks; seeds {args.seeds} (mean ± sample std over seeds).\n\n"
          + table(rows, designs))
    atomic_write_text(out / "designs.md", md)
    atomic_write_json(out / "designs.json", rows)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
