"""Half-precision teachers: does storing a teacher's weights in float16 change what it does?

    python bench/half_teachers.py teacher-acc FLOAT32_TEACHERS_DIR [--data-root data] [--db assets/cpu/db]
    python bench/half_teachers.py kd FLOAT32_TEACHER_FILE --dataset glyphs/hebrew [--students 8] [--work runs/half_kd]

``teacher-acc``: for every ``<dir>/<task>/teacher.pt`` (float32 files, e.g. the teachers before
``store_half``), the test top-1 of the float32 weights and of the same weights rounded to float16
and loaded back (exactly what :func:`dass.teacher.checkpoint.load_teacher` gives for a half file),
on the task's test split (the dataset is read from the database task file ``<db>/<task>.pt``);
prints both, their difference, and the largest relative change of any weight.

``kd``: the database builder's student phase (``configs/database/cpu.yaml``'s KD recipe, sampler and
remap) on ``--students`` students of one task, KD seeds 1 and 2, once with the float32 teacher and
once with its half-precision copy, each in its own work folder under ``--work``; prints per student
the four labels (``best_acc``), then mean |half - float32| at the same seed against the seed-vs-seed
spread mean |seed 1 - seed 2| of the same students, and the Spearman correlations.

Both end with one JSON line holding every number.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from common import ROOT, config_path  # noqa: E402  (puts the repository on sys.path)
from dass import config as cfgmod  # noqa: E402
from dass.data import load_dataset  # noqa: E402
from dass.io import atomic_torch_save, safe_torch_load  # noqa: E402
from dass.teacher.checkpoint import half_checkpoint, load_teacher  # noqa: E402
from dass.task import Task  # noqa: E402


def _half_copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(half_checkpoint(safe_torch_load(src), "measurement copy"), dst)
    return dst


def teacher_acc(args) -> dict:
    rows = []
    tmp = Path(args.work) / "half"
    for f in sorted(Path(args.teachers).glob("*/teacher.pt")):
        key = f.parent.name
        task = safe_torch_load(Path(args.db) / f"{key}.pt")["task"]
        _, sd32, meta = load_teacher(f)
        _, sd16, meta16 = load_teacher(_half_copy(f, tmp / key / "teacher.pt"))
        assert meta16["half"] is not None and all(v.dtype == sd32[k].dtype for k, v in sd16.items())
        rel = max(float(((sd16[k] - v).abs() / v.abs().clamp_min(1e-12)).max())
                  for k, v in sd32.items() if v.is_floating_point() and v.abs().max() > 0)
        te = load_dataset(task["dataset"], args.data_root, "test", meta["space"].image_size)
        a32, a16 = (Task(meta["space"], task["dataset"], args.data_root, t).use_arrays(test=te).teacher_accuracy()
                    for t in (f, tmp / key / "teacher.pt"))
        rows.append({"task": key, "acc_float32": a32, "acc_half": a16, "diff": a16 - a32,
                     "test_images": len(te.labels), "max_rel_weight_change": rel})
        print(f"| {key} | {a32:.2f} | {a16:.2f} | {a16 - a32:+.2f} | {len(te.labels)} | {rel:.2e} |", flush=True)
    d = np.array([r["diff"] for r in rows])
    out = {"bench": "half_teachers.teacher_acc", "teachers": len(rows), "mean_abs_diff": float(np.abs(d).mean()),
           "max_abs_diff": float(np.abs(d).max()), "rows": rows}
    print(f"teachers {len(rows)}: mean |half - float32| {out['mean_abs_diff']:.3f} points, max {out['max_abs_diff']:.3f}")
    return out


def _build(teacher: Path, dataset: str, students: int, work: Path, data_root: str, threads: int) -> dict:
    from dass.database import builder as B
    from dass.database.config import DatabaseConfig
    cfg = cfgmod.load(DatabaseConfig, config_path("database", "cpu"), [
        f"data_root={data_root}", f"work_dir={work}", f"out={work / 'db'}", "subset_tasks=[]",
        f"tasks=[{{dataset: {dataset}, split: meta_test, teacher: {teacher}}}]",
        f"students={{meta_test: {students}}}", "label_seeds={meta_test: [1, 2]}", "workers=1",
        f"threads_per_worker={threads}", "device=cpu"])
    B.build(cfg, phase="students")
    res = {}
    for f in sorted((work / "results").glob("*/*.json")):
        r = json.loads(f.read_text())
        res[(json.dumps(r["arch"], sort_keys=True), int(r["seed"]))] = r
    return res


def kd(args) -> dict:
    work = Path(args.work)
    f32 = Path(args.teacher)
    f16 = _half_copy(f32, work / "teacher_half" / "teacher.pt")
    runs = {}
    for name, t in (("float32", f32), ("half", f16)):
        w = work / f"kd_{name}"
        if args.fresh and w.exists():
            shutil.rmtree(w)
        runs[name] = _build(t.resolve(), args.dataset, args.students, w, args.data_root, args.threads)
    archs = sorted({a for a, _ in runs["float32"]})
    assert archs == sorted({a for a, _ in runs["half"]}), "the two builds sampled other students"
    lab = {(n, s): np.array([runs[n][(a, s)]["best_acc"] for a in archs]) for n in runs for s in (1, 2)}
    print("| student (MACs) | float32 seed 1 | float32 seed 2 | half seed 1 | half seed 2 |")
    print("|---|---:|---:|---:|---:|")
    for i, a in enumerate(archs):
        macs = runs["float32"][(a, 1)]["macs"]
        print(f"| {macs:,} | " + " | ".join(f"{lab[(n, s)][i]:.2f}" for n in ("float32", "half") for s in (1, 2)) + " |")
    same_seed = np.concatenate([lab[("half", s)] - lab[("float32", s)] for s in (1, 2)])
    seed_gap = np.concatenate([lab[(n, 1)] - lab[(n, 2)] for n in runs])
    out = {"bench": "half_teachers.kd", "dataset": args.dataset, "students": len(archs),
           "mean_abs_half_vs_float32_same_seed": float(np.abs(same_seed).mean()),
           "max_abs_half_vs_float32_same_seed": float(np.abs(same_seed).max()),
           "identical_pairs": int((same_seed == 0).sum()), "pairs": int(same_seed.size),
           "mean_abs_seed1_vs_seed2": float(np.abs(seed_gap).mean()),
           "max_abs_seed1_vs_seed2": float(np.abs(seed_gap).max()),
           "mean_label_float32": float((lab[("float32", 1)] + lab[("float32", 2)]).mean() / 2),
           "mean_label_half": float((lab[("half", 1)] + lab[("half", 2)]).mean() / 2),
           "spearman_half_vs_float32_seed1": float(spearmanr(lab[("half", 1)], lab[("float32", 1)])[0]),
           "spearman_float32_seed1_vs_seed2": float(spearmanr(lab[("float32", 1)], lab[("float32", 2)])[0]),
           "labels": {f"{n}@{s}": lab[(n, s)].tolist() for n, s in lab}}
    print(f"mean |half - float32| same seed: {out['mean_abs_half_vs_float32_same_seed']:.3f} points "
          f"(max {out['max_abs_half_vs_float32_same_seed']:.3f}, {out['identical_pairs']}/{out['pairs']} identical); "
          f"mean |seed 1 - seed 2|: {out['mean_abs_seed1_vs_seed2']:.3f} (max {out['max_abs_seed1_vs_seed2']:.3f}); "
          f"mean label float32 {out['mean_label_float32']:.2f}, half {out['mean_label_half']:.2f}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("teacher-acc")
    a.add_argument("teachers")
    k = sub.add_parser("kd")
    k.add_argument("teacher")
    k.add_argument("--dataset", required=True)
    k.add_argument("--students", type=int, default=8)
    k.add_argument("--fresh", action="store_true", help="delete earlier work folders first")
    for q in (a, k):
        q.add_argument("--data-root", default="data")
        q.add_argument("--db", default="assets/cpu/db")
        q.add_argument("--work", default="runs/half_teachers")
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = teacher_acc(args) if args.cmd == "teacher-acc" else kd(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
