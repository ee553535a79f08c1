"""The database stage (``python -m dass.database --config configs/database/cpu.yaml [--phase
all|teachers|students|merge]``; :func:`run` is its public entry).

:func:`run` builds the meta-training database (see :mod:`dass.database.builder` and
docs/DATABASE.md); rerunning it resumes: finished teachers and students are skipped.
:func:`validate` (``--validate DIR``) checks a built database (counts, shapes, ranges) and prints a
table per task (teacher accuracy, students, label seeds, seed agreement, label reliability).
:func:`compare` (``--compare DB_A DB_B``) compares two label sets of the same students (e.g. KD vs
CE-only, see docs/DATABASE.md). :func:`record_digests` (``--record-digests DIR``) adds the teachers'
proxy digests to a database merged before the merge recorded them.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DassError
from .builder import build
from .merge import record_teacher_digests, task_row
from .compare import compare_dbs, format_comparison
from .config import DatabaseConfig
from .format import acc_seeds, label_seeds_of, load_db, read_manifest, unlisted_task_files


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
    for row in (read_manifest(root) or {}).get("tasks", []):  # load_db checked that listed files exist
        found = [t for ts in summary.values() for t in ts if t["key"] == row["key"]]
        if row.get("file") and (not found or found[0]["students"] != row.get("students")):
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


def run(cfg: DatabaseConfig, phase: str = "all") -> dict | None:
    """Build (or resume) the database of ``cfg``; ``phase`` limits the work to ``teachers``,
    ``students`` or ``merge``. Returns the manifest (None when ``phase`` writes none)."""
    manifest = build(cfg, phase)   # sets up work_dir (config, log) once its inputs and out are checked
    if manifest is not None:
        rows = manifest["tasks"]
        done, total = sum(r["done"] for r in rows), sum(r["runs"] for r in rows)
        merged = sum(1 for r in rows if r["file"])
        print(f"database: {cfg.out} ({merged}/{len(rows)} task files, {done}/{total} KD runs, "
              f"complete={manifest['complete']})")
    return manifest


def validate(root, as_json: bool = False) -> dict:
    """Print the validation table of the database in ``root`` (JSON with ``as_json``), the tasks
    not merged yet and ``database OK``; returns :func:`validate_db`'s summary."""
    summary = validate_db(root)
    print(json.dumps(summary, indent=2) if as_json else format_summary(summary))
    pending = [r for r in (read_manifest(root) or {}).get("tasks", []) if not r.get("file")]
    if pending and not as_json:
        print(f"not merged yet ({len(pending)} tasks): " + ", ".join(
            f"{r['key']} {r.get('done', 0)}/{r.get('runs', r.get('students'))}" for r in pending))
    extra = unlisted_task_files(root)
    if extra:
        print(f"ignored, not in manifest.json ({len(extra)} files, not part of the database): " + ", ".join(extra))
    print("database OK" + (f" ({len(extra)} unlisted task files ignored)" if extra else ""))
    return summary


def record_digests(root) -> list[dict]:
    """Add the teachers' proxy digests to the task files of the database ``root``
    (:func:`dass.database.merge.record_teacher_digests`); prints one line per file rewritten or
    skipped for want of its teacher, then the counts."""
    rows = record_teacher_digests(root)
    for r in rows:
        if r["status"] == "recorded":
            print(f"{r['file']}: teacher.proxy_digest {r['digest'][:16]}... recorded")
        elif r["status"] == "no teacher":
            print(f"{r['file']}: skipped, teacher checkpoint not found: '{r['teacher_ckpt']}'")
    count = {s: sum(r["status"] == s for r in rows) for s in ("recorded", "unchanged", "no teacher")}
    print(f"{root}: {count['recorded']} task files given the teacher's proxy digest, {count['unchanged']} "
          f"already had it, {count['no teacher']} skipped (teacher checkpoint not found)")
    return rows


def compare(db_a, db_b, as_json: bool = False) -> list[dict]:
    """Print the per-task comparison of two label sets (JSON with ``as_json``); returns its rows."""
    rows = compare_dbs(db_a, db_b)
    print(json.dumps(rows, indent=2) if as_json else format_comparison(rows))
    return rows
