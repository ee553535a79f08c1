"""How much a predictor gains from more tasks of one kind: refit the prior of a predictor design (its
episode-0 predictor, which is what the checkpoint choice starts from; trees or linear, as the design says) on the meta-train tasks of
a database with only K of the meta-train tasks of one member database kept (K drawn at random,
``--draws`` times), and print the mean meta-valid Spearman per group of meta-valid tasks (each member
database's meta-valid tasks are a group). The deciding pilot before building more regime tasks
(docs/DATABASE.md, "Regimes"): if the curve still rises at the full count, more tasks are worth
their build.

    python bench/regime_tasks_curve.py --db assets/cpu/db_all --grow assets/cpu/db_regimes \\
        --counts 0 4 8 16 --draws 6 [--config configs/predictor/cpu.yaml] [-- key=value ...]

The design must have a prior (``cost_prior: true``). Proxies are read from
the design's caches (``proxy_read_only_caches``, then ``proxy_cache``, default runs/cache/predictor_proxy).
Prints a table and one JSON line per count; ``--json`` writes them too. Meta-test is never read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_result  # noqa: E402  (a DassError: one ``error:`` line, exit 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default="assets/cpu/db_all", help="the database meta-training reads (a union)")
    p.add_argument("--grow", default="assets/cpu/db_regimes",
                   help="member database whose meta-train tasks are counted (the others are always kept)")
    p.add_argument("--counts", nargs="+", type=int, default=[0, 4, 8, 16])
    p.add_argument("--draws", type=int, default=6, help="random subsets per count (one at 0 and at the full count)")
    p.add_argument("--config", default="configs/predictor/cpu.yaml")
    p.add_argument("--json", help="write the rows here")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the predictor config (after --)")
    a = p.parse_args(argv)
    return print_result(lambda: curve(a), lambda rows: table(a.grow, rows), as_json=False)


def curve(a: argparse.Namespace) -> list[dict]:
    """The rows, one per count (each also printed as a JSON line as it is done)."""
    from dass import config as cfgmod
    from dass.correlation import nanmean, spearman
    from dass.database.saved import load_saved_tasks
    from dass.predictor import proxy_inputs
    from dass.predictor.config import MetaTrainConfig
    from dass.predictor.data import load_tasks
    from dass.predictor.meta_train import PROXY_SEED, _prior_inputs, fit_prior, student_targets
    from dass.proxies.cache import ProxyCache

    cfg = cfgmod.load(MetaTrainConfig, a.config, [f"db={a.db}", *a.overrides])
    if not cfg.cost_prior:
        raise SystemExit(f"error: {a.config}: the design has no prior (cost_prior: true)")
    _, tasks = load_tasks(cfg.db, cfg.label)
    grow = {t.key for t in load_saved_tasks(a.grow, ["meta_train"])["meta_train"]}
    grow_valid = {t.key for t in load_saved_tasks(a.grow, ["meta_valid"])["meta_valid"]}
    train, valid = tasks["meta_train"], tasks["meta_valid"]
    if cfg.proxies:
        cache = ProxyCache(cfg.proxy_cache or "runs/cache/predictor_proxy", read_only=cfg.proxy_read_only_caches)
        proxy_inputs.attach(train + valid, cfg.proxies, cfg.data_root, cfg.proxy_batch_size, PROXY_SEED, cache)
    X = {t.key: _prior_inputs(t, cfg).double().numpy() for t in train}
    y = {t.key: student_targets(cfg.target, t.acc, t.teacher_acc).double().numpy() for t in train}
    kept = [t.key for t in train if t.key not in grow]
    pool = [t.key for t in train if t.key in grow]
    groups = {"grown": [t for t in valid if t.key in grow_valid], "others": [t for t in valid if t.key not in grow_valid]}
    rng = np.random.default_rng(0)
    rows = []
    for k in a.counts:
        if not 0 <= k <= len(pool):
            raise SystemExit(f"error: --counts {k}: the grown database has {len(pool)} meta-train tasks")
        draws = a.draws if 0 < k < len(pool) else 1
        scores = {g: [] for g in groups}
        for _ in range(draws):
            keys = kept + [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]
            prior = fit_prior(cfg, np.concatenate([X[k_] for k_ in keys]), np.concatenate([y[k_] for k_ in keys]))
            for g, ts in groups.items():
                rho = [spearman(prior.predict(_prior_inputs(t, cfg).double().numpy()), t.acc.numpy()) for t in ts]
                scores[g].append(nanmean(rho))
        row = {"count": k, "draws": draws, **{f"valid_{g}": float(np.mean(v)) for g, v in scores.items() if groups[g]},
               **{f"valid_{g}_sd": float(np.std(v)) for g, v in scores.items() if groups[g]}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"db": a.db, "grow": a.grow, "config": a.config,
                                            "overrides": a.overrides, "rows": rows}, indent=1))
    return rows


def table(grow: str, rows: list[dict]) -> str:
    name = Path(grow).name
    lines = [f"| {name} meta-train tasks kept | draws | meta-valid, {name} tasks | meta-valid, other tasks |",
             "|---:|---:|---:|---:|"]
    for r in rows:
        g, o = r.get("valid_grown"), r.get("valid_others")
        lines.append(f"| {r['count']} | {r['draws']} | {'-' if g is None else f'{g:.3f}'} | "
                     f"{'-' if o is None else f'{o:.3f}'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
