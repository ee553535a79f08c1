"""Markdown tables of the evaluation (rows = methods, columns = tasks + mean).

Every metric shown is "higher = better" (regret is <= 0), so the best value of a column is its
maximum; it is printed in bold, ties (at the printed precision) all bold. Methods listed in
``reference`` (the oracle, the best ground-truth student) are shown but never bolded: they are
bounds, not competitors. ``nan`` prints as ``nan`` and is never best.
"""
from __future__ import annotations

import math

CI_ROWS = ("ci90_lo", "ci90_hi")   # rows (``task``) holding the bootstrap interval of the mean

METRIC_TITLES = {
    "spearman": "Spearman rank correlation",
    "kendall": "Kendall tau",
    "pearson": "Pearson correlation",
    "partial_spearman": "Spearman controlled for MACs (partial rank correlation; MACs = 0)",
    "regret": "Regret of the top-1 pick (accuracy points, 0 = found the best)",
}


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table (first column left-aligned, the others right-aligned)."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    sep = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join([line(header), line(sep)] + [line(r) for r in rows]) + "\n"


def bold_best(values: dict[str, float], reference=(), digits: int = 3) -> dict[str, str]:
    """Format one column ``{row name: value}``; the maximal finite value(s) outside ``reference`` bold."""
    shown = {k: fmt(v, digits) for k, v in values.items()}
    cands = [round(v, digits) for k, v in values.items()
             if k not in reference and isinstance(v, float) and math.isfinite(v)]
    if cands:
        best = max(cands)
        for k, v in values.items():
            if k not in reference and isinstance(v, float) and math.isfinite(v) and round(v, digits) == best:
                shown[k] = f"**{shown[k]}**"
    return shown


def method_table(cells: dict[str, dict[str, float]], methods: list[str], columns: list[str],
                 reference=(), digits: int = 3, spread: dict | None = None,
                 intervals: dict[str, dict] | None = None) -> str:
    """``cells[method][column]`` -> a table with one row per method, best per column in bold;
    ``spread[method][column]``, when given, is printed after the value as `` ± s``;
    ``intervals[title][method] = (lo, hi)``, when given, adds one last column per title printed
    ``[lo, hi]``."""
    formatted = {c: bold_best({m: cells.get(m, {}).get(c, float("nan")) for m in methods}, reference, digits)
                 for c in columns}
    if spread is not None:
        for c in columns:
            for m in methods:
                formatted[c][m] += f" ± {fmt(spread.get(m, {}).get(c, float('nan')), digits)}"
    rows = [[m] + [formatted[c][m] for c in columns] for m in methods]
    header = ["method"] + columns
    for title, interval in (intervals or {}).items():
        header.append(title)
        for r, m in zip(rows, methods):
            lo, hi = interval.get(m, (float("nan"), float("nan")))
            r.append(f"[{fmt(lo, digits)}, {fmt(hi, digits)}]")
    return markdown_table(header, rows)


def group_row(kind: str, group: str = "") -> str:
    """The ``task`` value of a summary row: ``mean`` or a :data:`CI_ROWS` name over every task, or the
    same over the tasks of one group, ``<kind>:<group>``."""
    return f"{kind}:{group}" if group else kind


def correlations_markdown(rows: list[dict], labels: list[str], metrics: list[str], tasks: list[str],
                          methods: list[str], reference=("oracle",), notes: list[str] = (), groups=()) -> str:
    """One table per (label, metric) from the ``correlations.csv`` rows (``task`` = a key, "mean" or a
    group's ``mean:<group>``, :func:`group_row`): the tasks, each group's mean, the mean over all,
    then the 90 % intervals of the groups' means and of the mean over all."""
    parts = ["# Ranking the students of each meta-test task\n"]
    parts += [f"{n}\n" for n in notes]
    for label in labels:
        for metric in metrics:
            cells: dict[str, dict[str, float]] = {}
            for r in rows:
                if r["label"] == label:
                    cells.setdefault(r["method"], {})[r["task"]] = r[metric]
            intervals = {}
            for g in [*groups, ""]:
                lo, hi = group_row(CI_ROWS[0], g), group_row(CI_ROWS[1], g)
                ci = {m: (c[lo], c[hi]) for m, c in cells.items() if lo in c}
                if ci:
                    intervals[f"90 % CI {g}" if g else "90 % CI"] = ci
            title = METRIC_TITLES.get(metric, metric.replace("_", " "))
            parts.append(f"## {title} vs `{label}`\n")
            columns = tasks + [group_row("mean", g) for g in groups] + ["mean"]
            parts.append(method_table(cells, methods, columns, reference, intervals=intervals))
    return "\n".join(parts)


def search_kd_markdown(rows: list[dict], methods: list[str], columns: list[str], trained: bool,
                       reference=("oracle", "best_ground_truth"), notes: list[str] = ()) -> str:
    """Tables of the search-then-KD rows: the database accuracy of each pick (and its KD mean +- std
    over seeds when ``trained``); a column is ``<task> @ <budget>``."""
    parts = ["# Search then KD: each method's top-1 student under a MACs budget\n"]
    parts += [f"{n}\n" for n in notes]
    sections = [("db_acc", "Ground-truth accuracy of the pick (database, %)"),
                ("regret", "Regret of the pick (accuracy points)")]
    if trained:
        sections.append(("kd_mean", "Accuracy after KD of the pick, mean over seeds (%)"))
    for key, title in sections:
        cells: dict[str, dict[str, float]] = {}
        spread: dict[str, dict[str, float]] = {}
        for r in rows:
            cells.setdefault(r["method"], {})[r["column"]] = r[key]
            spread.setdefault(r["method"], {})[r["column"]] = r.get("kd_std", float("nan"))
        parts.append(f"## {title}\n")
        parts.append(method_table(cells, methods, columns, reference, digits=2,
                                  spread=spread if key == "kd_mean" else None))
    return "\n".join(parts)
