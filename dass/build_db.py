"""``python -m dass.build_db --config configs/db/cpu.yaml [--stage all|teachers|students|merge]``

Builds the meta-training database (see ``dass/database/builder.py`` and docs/DATABASE.md).
Rerunning the command resumes: finished teachers and students are skipped.
``python -m dass.build_db --validate DIR`` checks a built database (counts, shapes, ranges).
"""
from __future__ import annotations

import json
from pathlib import Path

from .cli import load_config, make_parser, run_main, setup_run_dir
from .database.builder import BuildConfig, build
from .database.format import load_db, read_manifest
from .errors import DassError


def validate_db(root) -> dict:
    db = load_db(root)
    summary = {}
    for split, tasks in db.items():
        summary[split] = [{"key": d["task"]["key"], "students": len(d["students"]["arch"]),
                           "teacher_best_acc": round(float(d["teacher"]["best_acc"]), 2),
                           "best_acc_range": [round(float(d["students"]["best_acc"].min()), 2),
                                              round(float(d["students"]["best_acc"].max()), 2)]}
                          for d in tasks]
    manifest = Path(root) / "manifest.json"
    for row in (read_manifest(root) or {}).get("tasks", []):  # load_db checked that listed files exist
        found = [t for ts in summary.values() for t in ts if t["key"] == row["key"]]
        if row.get("file") and (not found or found[0]["students"] != row.get("students")):
            raise DassError(f"{manifest}: task {row['key']} student count differs from its file")
    return summary


def main(args) -> int:
    if args.validate:
        print(json.dumps(validate_db(args.validate), indent=2))
        print("database OK")
        return 0
    cfg = load_config(BuildConfig, args)
    setup_run_dir(cfg.work_dir, cfg, "build_db")
    manifest = build(cfg, args.stage)
    if manifest is not None:
        done = sum(r["done"] for r in manifest["tasks"])
        total = sum(r["students"] for r in manifest["tasks"])
        print(f"database: {cfg.out} ({done}/{total} students, complete={manifest['complete']})")
    return 0


def _parser():
    p = make_parser("python -m dass.build_db", "Build the meta-training database (resumable).")
    p.add_argument("--stage", default="all", choices=["all", "teachers", "students", "merge"])
    p.add_argument("--validate", metavar="DIR", help="validate a built database folder and exit")
    return p


if __name__ == "__main__":
    run_main(main, parser=_parser())
