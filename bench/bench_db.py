"""Database build, student phase: students per hour with the teacher-logit cache (teacher outputs
computed once per task) vs the lockstep path without it (one teacher forward per batch and group),
same tasks, students, KD recipe and worker count.

    python bench/bench_db.py --threads 1             # 2 meta-train tasks of configs/database/cpu.yaml, 10 students each
    python bench/bench_db.py --quick                 # 2 synthetic tasks x 5 students, 1 epoch, in process
    python bench/bench_db.py --tasks glyphs/hebrew --students 20

Both paths run the builder's own student phase (``dass.database.builder.run_group`` on the groups
``group_jobs`` makes, in ``--workers`` spawned worker processes with ``--threads`` torch threads
each, or in this process when ``--workers 1``), from an empty work folder every round, so the new
path pays for computing its caches in every timed round. ``old``: ``lockstep: 4``,
``teacher_logit_cache: false`` (the builder before the cache); ``new``: ``lockstep: --new-lockstep``
(default 4), ``teacher_logit_cache: true``. Worker start-up is outside the timing (the pools are
started and warmed first); rounds alternate old, new, old, new, ... and the median counts.
students/hour = students * 3600 / seconds. Also reported: the CPU seconds (user + system) the
working processes spent per round and students per CPU-hour, which a machine shared with other
jobs distorts much less than wall time.

Tasks, students and recipe: ``--config`` (default configs/database/cpu.yaml): its KD recipe (``--epochs``
overrides the epochs), its teachers (``teachers_dir``) and data (``--data-root``), the students its
sampler draws for each task's split (``--students`` overrides the count). When a task's data or
teacher is missing, a synthetic task of the glyphs' size (2,160 + 720 images of 32 x 32, 40
classes, seeded noise) with a randomly initialised teacher stands in. Quick mode: two synthetic
tasks of 64 + 32 images at 16 px, 5 classes, 5 students each, KD 1 epoch at batch 16, 1 worker.

Check (quick and full): every student's result (best_acc, final_acc, final_loss and the per-epoch
history without times) is identical in both paths, in every round (the cache promises bitwise
equal labels on the CPU). Target on CPU: new >= 2x old students/hour.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import ROOT, base_parser, check, emit_json, markdown_table, median, setup, time_interleaved, verdict
from dass import config as cfgmod
from dass.database import launchers, plan as P
from dass.database.config import DatabaseConfig
from dass.database.jobs import JobGroup
from dass.database.runners import run_group
from dass.io import atomic_torch_save, read_json
from dass.space import build, load_space, teacher_arch

TARGET = 2.0
COMPARED = ("best_acc", "final_acc", "final_loss")
DEFAULT_TASKS = "glyphs/armenian,glyphs/georgian"


# ------------------------------------------------------------------------------ tasks

def write_synthetic_task(root: Path, name: str, seed: int, n_train: int, n_test: int, size: int,
                         classes: int) -> None:
    """A dataset in the glyph layout (``<root>/glyphs/<name>/{train,test}_{images,labels}.npy``) of seeded noise."""
    rng = np.random.default_rng(seed)
    out = root / "glyphs" / name
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        np.save(out / f"{split}_images.npy", rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
        np.save(out / f"{split}_labels.npy", (np.arange(n) % classes).astype(np.int64))


def write_random_teacher(path: Path, space, classes: int, dataset: str) -> None:
    torch.manual_seed(0)
    net = build(teacher_arch(space), space, classes)
    atomic_torch_save({"state_dict": net.state_dict(), "space": cfgmod.to_dict(space),
                       "arch": teacher_arch(space).to_dict(), "num_classes": classes, "dataset": dataset,
                       "metrics": {"best_acc": 50.0, "final_acc": 50.0}}, path)


def bench_config(args, scratch: Path) -> tuple[DatabaseConfig, list[str]]:
    """The build config both paths share (tasks, students, recipe, workers); notes on stand-ins."""
    raw = cfgmod.read_with_bases(ROOT / args.config)
    for key in ("space", "teachers_dir"):
        if raw.get(key) and not Path(raw[key]).is_absolute():
            raw[key] = str(ROOT / raw[key])
    raw["data_root"] = args.data_root
    raw["subset_tasks"] = []  # the benchmark trains the named tasks only (class subsets need the whole family)
    notes = []
    if args.quick:
        names = ["synthetic_a", "synthetic_b"]
        raw.update(tasks=[{"dataset": f"glyphs/{n}", "split": "meta_train"} for n in names],
                   students={"meta_train": args.students or 5}, workers=1, data_root=str(scratch / "data"),
                   teachers_dir=str(scratch / "teachers"))
        raw["kd_recipe"] = {**raw["kd_recipe"], "epochs": 1, "batch_size": 16, "eval_batch_size": 32}
        space = load_space(raw["space"])
        for i, n in enumerate(names):
            write_synthetic_task(scratch / "data", n, i, 64, 32, 16, 5)
            write_random_teacher(scratch / "teachers" / f"glyphs-{n}" / "teacher.pt", space, 5, f"glyphs/{n}")
    else:
        wanted = args.tasks.split(",")
        tasks = [t for t in raw["tasks"] if t["dataset"] in wanted]
        missing = set(wanted) - {t["dataset"] for t in tasks}
        tasks += [{"dataset": d, "split": "meta_train"} for d in sorted(missing)]
        space = load_space(raw["space"])
        from dass.data.registry import list_datasets
        have = set(list_datasets(args.data_root)) if Path(args.data_root).is_dir() else set()
        for t in tasks:
            key = t["dataset"].replace("/", "-")
            teacher = Path(raw.get("teachers_dir") or "") / key / "teacher.pt"
            if t["dataset"] in have and teacher.is_file():
                t["teacher"] = str(teacher)
                continue
            name = f"synthetic_{key}"
            write_synthetic_task(scratch / "data", name, len(notes), 2160, 720, 32, 40)
            t.update(dataset=f"glyphs/{name}", teacher=str(scratch / "teachers" / f"{name}.pt"))
            write_random_teacher(Path(t["teacher"]), space, 40, t["dataset"])
            notes.append(f"{key}: data or teacher missing, a synthetic task stands in")
        if notes:  # synthetic datasets live in the scratch root: link the real ones there too
            for name in have:
                (scratch / "data" / name).parent.mkdir(parents=True, exist_ok=True)
                (scratch / "data" / name).symlink_to(Path(args.data_root).resolve() / name)
            raw["data_root"] = str(scratch / "data")
        raw["tasks"] = tasks
        if args.students:
            raw["students"] = {s: args.students for s in raw["students"]}
        if args.epochs:
            raw["kd_recipe"] = {**raw["kd_recipe"], "epochs": args.epochs}
        if args.workers:
            raw["workers"] = args.workers
    raw.update(launcher="local", device=str(args.device_resolved), threads_per_worker=max(args.threads, 0),
               lockstep=args.lockstep, teacher_logit_cache=False, out=str(scratch / "out"))
    return cfgmod.from_dict(DatabaseConfig, raw, where=args.config), notes


# ------------------------------------------------------------------------------ one path

class StudentPhase:
    """The builder's student phase for one config: persistent workers, a fresh work folder per run."""

    def __init__(self, cfg: DatabaseConfig, plan: dict):
        self.cfg = cfg
        self.groups = P.interleave_tasks(P.group_jobs(plan, cfg.lockstep))  # the order build() runs them in
        self.pool = None
        self.cpu: list[float] = []   # CPU seconds of every run
        if cfg.workers > 1:
            self.pool = mp.get_context("spawn").Pool(cfg.workers, initializer=launchers._worker_init,
                                                      initargs=(cfgmod.to_dict(cfg),))
            list(self.pool.imap_unordered(launchers._worker_group, [JobGroup("warm-up")] * cfg.workers))
        else:
            self.tasks = P.build_tasks(cfg)

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the processes doing the work."""
        if self.pool is None:
            t = os.times()
            return t.user + t.system
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for p in self.pool._pool:  # the worker processes
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def run(self) -> int:
        shutil.rmtree(self.cfg.work_dir, ignore_errors=True)
        cpu0 = self.cpu_seconds()
        if self.pool is not None:
            trained = sum(self.pool.imap_unordered(launchers._worker_group, self.groups))
        else:
            trained = sum(run_group(self.cfg, g, self.tasks) for g in self.groups)
        self.cpu.append(self.cpu_seconds() - cpu0)
        return trained

    def labels(self, plan: dict) -> dict:
        """student_id -> the compared fields and the history without times."""
        out = {}
        for jobs in plan.values():
            for j in jobs:
                r = read_json(j.result_path(self.cfg.work_dir))
                out[j.student_id] = {**{k: r[k] for k in COMPARED},
                                     "history": [{k: v for k, v in h.items() if k != "seconds"} for h in r["history"]]}
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/database/cpu.yaml", help="database config (tasks, recipe, teachers)")
    ap.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated datasets of the config's tasks")
    ap.add_argument("--students", type=int, default=0, help="students per task (0: the config's count for its split)")
    ap.add_argument("--epochs", type=int, default=0, help="KD epochs (0: the config's)")
    ap.add_argument("--workers", type=int, default=0, help="worker processes (0: the config's)")
    ap.add_argument("--lockstep", type=int, default=4, help="students per group, old path")
    ap.add_argument("--new-lockstep", type=int, default=4, help="students per group, new path")
    ap.add_argument("--data-root", default=str(ROOT / "data"))
    args = ap.parse_args()
    if args.repeats is None and not args.quick:
        args.repeats = 2                      # a round is a whole student phase: minutes on the CPU
    if args.warmup is None:
        args.warmup = 0                       # the workers are started and warmed before timing
    args.device_resolved = setup(args)
    with tempfile.TemporaryDirectory(prefix="bench_db_") as tmp:
        scratch = Path(tmp)
        old_cfg, notes = bench_config(args, scratch)
        old_cfg = dataclasses.replace(old_cfg, work_dir=str(scratch / "work_old"))
        new_cfg = dataclasses.replace(old_cfg, work_dir=str(scratch / "work_new"), lockstep=args.new_lockstep,
                                      teacher_logit_cache=True)
        plan = P.plan_students(old_cfg, P.build_tasks(old_cfg))
        students = sum(len(j) for j in plan.values())
        for note in notes:
            print(f"note: {note}")
        print(f"{len(plan)} task(s), {students} students, KD {old_cfg.kd_recipe.epochs} epoch(s) at batch "
              f"{old_cfg.kd_recipe.batch_size}, {old_cfg.workers} worker(s) x {old_cfg.threads_per_worker or 'default'} "
              f"thread(s), device {args.device_resolved}, {args.repeats} timed round(s)")
        phases = {"old": StudentPhase(old_cfg, plan), "new": StudentPhase(new_cfg, plan)}
        labels = {"old": [], "new": []}
        try:
            def timed_run(name):
                def fn():
                    trained = phases[name].run()
                    if trained != students:
                        raise SystemExit(f"{name}: trained {trained} students, expected {students}")
                    labels[name].append(phases[name].labels(plan))
                return fn
            seconds = time_interleaved({n: timed_run(n) for n in phases}, args.device_resolved, args.repeats,
                                       args.warmup)
        finally:
            for p in phases.values():
                p.close()
    reference = labels["old"][0]
    identical = all(run == reference for runs in labels.values() for run in runs)
    check(identical, f"{students} students x {len(labels['old']) + len(labels['new'])} runs: "
                     "best_acc / final_acc / final_loss / history identical in both paths")
    per_hour = {n: students * 3600.0 / median(s) for n, s in seconds.items()}
    ratio = per_hour["new"] / per_hour["old"]
    cpu = {n: p.cpu for n, p in phases.items()}
    per_cpu_hour = {n: students * 3600.0 / median(c) for n, c in cpu.items()}
    cpu_ratio = per_cpu_hour["new"] / per_cpu_hour["old"]
    rows = [[f"old: lockstep {old_cfg.lockstep}, teacher forward per batch and group", median(seconds["old"]),
             per_hour["old"], median(cpu["old"]), per_cpu_hour["old"], "-"],
            [f"new: lockstep {new_cfg.lockstep}, teacher logits cached once per task", median(seconds["new"]),
             per_hour["new"], median(cpu["new"]), per_cpu_hour["new"], f"{ratio:.2f}x (CPU time {cpu_ratio:.2f}x)"]]
    print(markdown_table(["path", "wall s (median)", "students/hour", "worker CPU s (median)",
                          "students/CPU-hour", "speed-up"], rows))
    print(f"new {ratio:.2f}x old in students/hour (target {TARGET:g}x: {verdict(ratio, TARGET)}); "
          f"{cpu_ratio:.2f}x in students per CPU-hour of the workers")
    emit_json("db", args, args.device_resolved, ratio=ratio, target=TARGET, met=ratio >= TARGET,
              identical=identical, students=students, tasks=sorted(plan), workers=old_cfg.workers,
              threads_per_worker=old_cfg.threads_per_worker, epochs=old_cfg.kd_recipe.epochs,
              batch_size=old_cfg.kd_recipe.batch_size, lockstep={"old": old_cfg.lockstep, "new": new_cfg.lockstep},
              repeats=args.repeats, warmup=args.warmup, seconds=seconds, students_per_hour=per_hour,
              cpu_seconds=cpu, students_per_cpu_hour=per_cpu_hour, cpu_ratio=cpu_ratio, notes=notes,
              results={sid: {k: v for k, v in r.items() if k != "history"} for sid, r in sorted(reference.items())})


if __name__ == "__main__":
    main()
