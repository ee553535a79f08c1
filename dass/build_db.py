"""``python -m dass.build_db --config configs/db/cpu.yaml [--stage all|teachers|students|merge]``

Builds the meta-training database (see ``dass/database/builder.py`` and docs/DATABASE.md).
Rerunning the command resumes: finished teachers and students are skipped.
``python -m dass.build_db --validate DIR`` checks a built database (counts, shapes, ranges) and prints
a table per task (teacher accuracy, students, label seeds, seed agreement, label reliability).
``python -m dass.build_db --compare DB_A DB_B`` compares two label sets of the same students (e.g.
KD vs CE-only, see docs/DATABASE.md).
"""
from __future__ import annotations

import json
from pathlib import Path

from .cli import load_config, make_parser, run_main, setup_run_dir
from .database.builder import BuildConfig, build, task_row
from .database.format import acc_seeds, label_seeds_of, load_db
from .errors import DassError


def validate_db(root) -> dict:
    """Load and check every task file of ``root`` (and its manifest); per split, one row per task:
    teacher accuracy, students, label seeds, seed-vs-seed Spearman, reliability, label range."""
    db = load_db(root)
    summary = {}
    for split, tasks in db.items():
        summary[split] = [{**task_row(d["task"]["key"], split, d["teacher"]["best_acc"], len(d["students"]["arch"]),
                                      label_seeds_of(d), acc_seeds(d)),
                           "best_acc_range": [round(float(d["students"]["best_acc"].min()), 2),
                                              round(float(d["students"]["best_acc"].max()), 2)]}
                          for d in tasks]
    manifest = Path(root) / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        for row in m.get("tasks", []):
            if row.get("file") and not (Path(root) / row["file"]).is_file():
                raise DassError(f"{manifest}: lists {row['file']} which is missing")
            found = [t for ts in summary.values() for t in ts if t["key"] == row["key"]]
            if row.get("file") and (not found or found[0]["students"] != row["students"]):
                raise DassError(f"{manifest}: task {row['key']} student count differs from its file")
    return summary


def _fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def format_summary(summary: dict) -> str:
    """The validation summary as a text table plus the counts per split."""
    lines = [f"{'split':<10} {'task':<28} {'teacher':>7} {'students':>8} {'seeds':<9} {'seed rho':>8} "
             f"{'reliab.':>7} {'label range':>13}"]
    for split, rows in summary.items():
        for r in rows:
            lo, hi = r["best_acc_range"]
            seeds = ",".join(str(s) for s in r["label_seeds"])
            lines.append(f"{split:<10} {r['key'][:28]:<28} {_fmt(r['teacher_best_acc'], '.1f'):>7} {r['students']:>8} "
                         f"{seeds:<9} {_fmt(r['seed_spearman']):>8} {_fmt(r['reliability']):>7} "
                         f"{lo:>6.1f}-{hi:<6.1f}")
    lines.append("")
    for split, rows in summary.items():
        rel = [r["reliability"] for r in rows if r["reliability"] is not None]
        teach = [r["teacher_best_acc"] for r in rows]
        lines.append(f"{split}: {len(rows)} tasks, {sum(r['students'] for r in rows)} students"
                     + (f", teachers {min(teach):.1f}-{max(teach):.1f} %" if teach else "")
                     + (f", mean reliability {sum(rel) / len(rel):.3f} ({len(rel)} tasks)" if rel else ""))
    return "\n".join(lines)


def main(args) -> int:
    if args.compare:
        from .database.compare import compare_dbs, format_comparison
        rows = compare_dbs(*args.compare)
        print(json.dumps(rows, indent=2) if args.json else format_comparison(rows))
        return 0
    if args.validate:
        summary = validate_db(args.validate)
        print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
        manifest = Path(args.validate) / "manifest.json"
        pending = [r for r in json.loads(manifest.read_text()).get("tasks", []) if not r.get("file")] \
            if manifest.is_file() else []
        if pending and not args.json:
            print(f"not merged yet ({len(pending)} tasks): " + ", ".join(
                f"{r['key']} {r.get('done', 0)}/{r.get('runs', r.get('students'))}" for r in pending))
        print("database OK")
        return 0
    cfg = load_config(BuildConfig, args)
    setup_run_dir(cfg.work_dir, cfg, "build_db")
    manifest = build(cfg, args.stage)
    if manifest is not None:
        rows = manifest["tasks"]
        done, total = sum(r["done"] for r in rows), sum(r["runs"] for r in rows)
        merged = sum(1 for r in rows if r["file"])
        print(f"database: {cfg.out} ({merged}/{len(rows)} task files, {done}/{total} KD runs, "
              f"complete={manifest['complete']})")
    return 0


def _parser():
    p = make_parser("python -m dass.build_db", "Build the meta-training database (resumable).", BuildConfig)
    p.add_argument("--stage", default="all", choices=["all", "teachers", "students", "merge"])
    p.add_argument("--validate", metavar="DIR", help="validate a built database folder, print its table and exit")
    p.add_argument("--compare", nargs=2, metavar=("DB_A", "DB_B"),
                   help="per task: mean gain A - B and Spearman between the labels of the students in both")
    p.add_argument("--json", action="store_true", help="with --validate or --compare: print JSON")
    return p


if __name__ == "__main__":
    run_main(main, parser=_parser())
