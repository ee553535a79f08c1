"""Two label sets of the same students compared task by task (e.g. KD labels vs CE-only labels).

``python -m dass.database --compare <dbA> <dbB>``: for every task key in both databases, the
students present in both (matched by architecture), the mean label of each, the mean gain A - B,
the share of students for which A is better, and the Spearman correlation between the A and B
labels (``best_acc``, the mean over each database's label seeds).
"""
from __future__ import annotations

import numpy as np

from ..errors import DassError
from .format import _arch_key, load_db


def compare_dbs(root_a, root_b, label: str = "best_acc") -> list[dict]:
    from scipy.stats import spearmanr  # lazy: scipy costs ~0.9 s at start-up, only for a comparison
    tasks_a = {d["task"]["key"]: d for ts in load_db(root_a).values() for d in ts}
    tasks_b = {d["task"]["key"]: d for ts in load_db(root_b).values() for d in ts}
    rows = []
    for key in sorted(tasks_a.keys() & tasks_b.keys()):
        da, db = tasks_a[key], tasks_b[key]
        acc_b = {_arch_key(a): float(v) for a, v in zip(db["students"]["arch"], db["students"][label])}
        pairs = [(float(v), acc_b[_arch_key(a)]) for a, v in zip(da["students"]["arch"], da["students"][label])
                 if _arch_key(a) in acc_b]
        if not pairs:
            continue
        a, b = np.array(pairs).T
        rho = float(spearmanr(a, b)[0]) if len(a) > 2 else float("nan")
        rows.append({"key": key, "split": da["task"]["split"], "students": len(a), "mean_a": float(a.mean()),
                     "mean_b": float(b.mean()), "gain": float((a - b).mean()),
                     "a_better": float((a > b).mean()), "spearman": rho})
    if not rows:
        raise DassError(f"{root_a} and {root_b} share no task with common students")
    return rows


def format_comparison(rows: list[dict], name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"{'split':<10} {'task':<28} {'students':>8} {'mean ' + name_a:>10} {'mean ' + name_b:>10} "
             f"{'gain':>7} {name_a + ' better':>9} {'spearman':>8}"]
    for r in rows:
        lines.append(f"{r['split']:<10} {r['key'][:28]:<28} {r['students']:>8} {r['mean_a']:>10.2f} {r['mean_b']:>10.2f} "
                     f"{r['gain']:>+7.2f} {100 * r['a_better']:>8.0f}% {r['spearman']:>8.3f}")
    n = len(rows)
    lines.append(f"{'mean':<10} {n:<28} {'':>8} {sum(r['mean_a'] for r in rows) / n:>10.2f} "
                 f"{sum(r['mean_b'] for r in rows) / n:>10.2f} {sum(r['gain'] for r in rows) / n:>+7.2f} "
                 f"{100 * sum(r['a_better'] for r in rows) / n:>8.0f}% {np.nanmean([r['spearman'] for r in rows]):>8.3f}")
    return "\n".join(lines)
