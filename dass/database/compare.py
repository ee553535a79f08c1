"""Two label sets of the same students compared task by task (e.g. KD labels vs CE-only labels).

``python -m dass.database --compare <dbA> <dbB>``: for every task key in both databases, the
students present in both (matched by architecture), the mean label of each, the mean gain A - B,
the share of students for which A is better, and the Spearman correlation between the A and B
labels (``best_acc``, the mean over each database's label seeds); beside it, each database's own
seed-vs-seed Spearman and the Spearman-Brown reliability of its label over those students
(:func:`dass.database.format.seed_agreement`; None where a database has one label seed), the
measure of how far the A-vs-B Spearman could reach.
"""
from __future__ import annotations

import numpy as np

from ..correlation import spearman
from ..errors import DassError
from .format import _arch_key, acc_seeds, load_db, seed_agreement


def compare_dbs(root_a, root_b, label: str = "best_acc") -> list[dict]:
    tasks_a = {d["task"]["key"]: d for ts in load_db(root_a).values() for d in ts}
    tasks_b = {d["task"]["key"]: d for ts in load_db(root_b).values() for d in ts}
    space_a, space_b = (next(iter(t.values()))["space"] for t in (tasks_a, tasks_b))
    if space_a != space_b:
        raise DassError(f"{root_a} and {root_b} hold students of different spaces ('{space_a.get('name')}' and "
                        f"'{space_b.get('name')}'): their architectures are not the same networks")
    rows = []
    for key in sorted(tasks_a.keys() & tasks_b.keys()):
        da, db = tasks_a[key], tasks_b[key]
        acc_b = {_arch_key(a): float(v) for a, v in zip(db["students"]["arch"], db["students"][label])}
        pairs = [(float(v), acc_b[_arch_key(a)]) for a, v in zip(da["students"]["arch"], da["students"][label])
                 if _arch_key(a) in acc_b]
        if not pairs:
            continue
        a, b = np.array(pairs).T
        rho = spearman(a, b) if len(a) > 2 else float("nan")
        rows.append({"key": key, "split": da["task"]["split"], "students": len(a), "mean_a": float(a.mean()),
                     "mean_b": float(b.mean()), "gain": float((a - b).mean()),
                     "a_better": float((a > b).mean()), "spearman": rho,
                     **_seed_columns(da, acc_b.keys(), label, "a"), **_seed_columns(db, acc_b.keys(), label, "b")})
    if not rows:
        raise DassError(f"{root_a} and {root_b} share no task with common students")
    return rows


def _seed_columns(d: dict, shared, label: str, side: str) -> dict:
    """``seed_rho_<side>``, ``reliability_<side>`` of task ``d``'s label over its students in ``shared``."""
    keep = [i for i, a in enumerate(d["students"]["arch"]) if _arch_key(a) in shared]
    r, rel = seed_agreement(acc_seeds(d, label)[keep]) if len(keep) > 2 else (None, None)
    return {f"seed_rho_{side}": r, f"reliability_{side}": rel}


def _mean(rows: list[dict], col: str) -> float | None:
    vals = [r[col] for r in rows if r[col] is not None]
    return sum(vals) / len(vals) if vals else None


def _opt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_comparison(rows: list[dict], name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"{'split':<10} {'task':<28} {'students':>8} {'mean ' + name_a:>10} {'mean ' + name_b:>10} "
             f"{'gain':>7} {name_a + ' better':>9} {'spearman':>8} {'rho ' + name_a + ' seeds':>11} "
             f"{'rel. ' + name_a:>7} {'rho ' + name_b + ' seeds':>11} {'rel. ' + name_b:>7}"]
    for r in rows:
        lines.append(f"{r['split']:<10} {r['key'][:28]:<28} {r['students']:>8} {r['mean_a']:>10.2f} {r['mean_b']:>10.2f} "
                     f"{r['gain']:>+7.2f} {100 * r['a_better']:>8.0f}% {r['spearman']:>8.3f} "
                     f"{_opt(r['seed_rho_a']):>11} {_opt(r['reliability_a']):>7} {_opt(r['seed_rho_b']):>11} "
                     f"{_opt(r['reliability_b']):>7}")
    n = len(rows)
    lines.append(f"{'mean':<10} {n:<28} {'':>8} {sum(r['mean_a'] for r in rows) / n:>10.2f} "
                 f"{sum(r['mean_b'] for r in rows) / n:>10.2f} {sum(r['gain'] for r in rows) / n:>+7.2f} "
                 f"{100 * sum(r['a_better'] for r in rows) / n:>8.0f}% {np.nanmean([r['spearman'] for r in rows]):>8.3f} "
                 + " ".join(f"{_opt(_mean(rows, c)):>{w}}" for c, w in (("seed_rho_a", 11), ("reliability_a", 7),
                                                                      ("seed_rho_b", 11), ("reliability_b", 7))))
    return "\n".join(lines)
