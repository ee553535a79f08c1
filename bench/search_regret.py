"""Budgeted search regret over seeds: the evaluation's ``search_kd.csv`` (each method's pick among a
task's database students under a MACs budget, its ``regret`` against the best student of the pool)
summed up per method and budget: the mean over the tasks and over a method's seeds (method names
``<method>@s<seed>``, as ``bench/seed_table.py`` reads them; a name without ``@s`` is one seed), and
the mean over every budget.

    python bench/search_regret.py runs/regime_predictors/evaluate/search_kd.csv [--tasks KEY ...]
        [--methods dass meta_nas_A ...] [--json out.json]

Prints a markdown table, methods in the order given (default: the file's order), regret in accuracy
points (0 = the pool's best was picked).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_result  # noqa: E402  (a DassError: one ``error:`` line, exit 2)


def read(path: Path, only: list[str] | None = None) -> dict[str, dict[float, list[float]]]:
    """{method: {budget: [regret of every (task, seed) cell]}} of a search_kd.csv, the tasks in ``only``."""
    from dass.errors import DassError
    out: dict = defaultdict(lambda: defaultdict(list))
    try:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if only and r["task"] not in only:
                    continue
                out[r["method"].partition("@s")[0]][float(r["budget"])].append(float(r["regret"]))
    except OSError as e:
        raise DassError(f"{path}: {e.strerror or e}") from None
    except (KeyError, ValueError) as e:
        raise DassError(f"{path}: not an evaluation's search_kd.csv ({e})") from None
    return out


def rows(data, methods: list[str] | None = None) -> list[dict]:
    from dass.errors import DassError
    methods = methods or list(data)
    missing = [m for m in methods if m not in data]
    if missing:
        raise DassError(f"no rows for method(s) {', '.join(missing)}; the file has {', '.join(data) or 'none'}")
    budgets = sorted({b for m in methods for b in data[m]})
    return [{"method": m, "cells": sum(len(v) for v in data[m].values()),
             "budgets": {b: float(np.mean(data[m][b])) for b in budgets if data[m].get(b)},
             "all": float(np.mean([x for b in budgets for x in data[m].get(b, [])]))} for m in methods]


def markdown(table: list[dict]) -> str:
    budgets = sorted({b for r in table for b in r["budgets"]})
    lines = ["| method | cells | " + " | ".join(f"{b:g} of the teacher's MACs" for b in budgets) + " | all budgets |",
             "|---|---:|" + "---:|" * len(budgets) + "---:|"]
    for r in table:
        cols = [f"{r['budgets'][b]:.2f}" if b in r["budgets"] else "-" for b in budgets]
        lines.append(f"| {r['method']} | {r['cells']} | " + " | ".join(cols) + f" | {r['all']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv", type=Path, help="an evaluation's search_kd.csv")
    p.add_argument("--tasks", nargs="+", help="only these task keys")
    p.add_argument("--methods", nargs="+", help="these methods, in this order (default: all, the file's order)")
    p.add_argument("--json", type=Path, help="write the rows here too")
    a = p.parse_args(argv)

    def compute():
        table = rows(read(a.csv, a.tasks), a.methods)
        if a.json:
            a.json.write_text(json.dumps(table, indent=1))
        return table
    return print_result(compute, markdown, as_json=False)


if __name__ == "__main__":
    sys.exit(main())
