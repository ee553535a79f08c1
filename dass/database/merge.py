"""The database build's merge: the task file of every task whose students are all done (functional
maps, encodings, teacher map, accuracy and proxy digest, dataset features, per-seed accuracies and
their mean), ``manifest.json`` and ``build_log.json``; :func:`record_teacher_digests` adds the
teacher's proxy digest to the task files of a database merged before the merge wrote it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..config import to_dict
from ..errors import DassError
from ..hashing import file_sha256, proxy_state_sha256
from ..io import atomic_write_json, read_json
from ..space import Arch, macs, onehot, onehot_batch, params, teacher_arch
from ..task import Task
from .config import DatabaseConfig, TaskSpec
from .format import FORMAT, db_task_files, load_task_db, read_manifest, save_task_db, seed_agreement
from .jobs import StudentJob, content_hash
from .plan import build_space, finished_results, job_seeds, per_seed, teacher_path
from .saved import SavedTask
from .splits import META_SPLITS


def merge_task(cfg: DatabaseConfig, task: TaskSpec, results: list[dict], seeds: list[int],
               tasks: dict[str, Task]) -> tuple[Path, dict]:
    """Write the task file from the records of all its students and ``seeds`` (in plan order:
    seed-major); returns its path and the students' per-seed accuracies ``{best_acc_seeds, final_acc_seeds}``."""
    t = tasks[task.key]
    tr, space = t.train, t.space
    n = len(results) // len(seeds)
    first = results[:n]                       # the records of the first seed give the architectures
    archs = [Arch.from_dict(r["arch"]) for r in first]
    fmaps = t.student_maps(archs)
    t_arch = teacher_arch(space)
    t_map = t.teacher_map()
    t_metrics = t.teacher_meta.get("metrics", {}) or {}
    if "best_acc" not in t_metrics:
        raise DassError(f"task {task.key}: teacher checkpoint has no metrics.best_acc")
    acc = {k: per_seed(results, seeds, k) for k in ("best_acc", "final_acc", "final_loss", "wall_s")}
    d = {
        "format": FORMAT,
        "task": {"key": task.key, "dataset": task.dataset, "split": task.split, "num_classes": tr.num_classes,
                 "teacher_ckpt": str(teacher_path(cfg, task)), "data_root": cfg.data_root},
        "space": to_dict(space),
        "noise_seed": cfg.noise_seed,
        "remap": cfg.remap,
        **({"scratch": True} if cfg.scratch else {}),   # labels from random initialisation, CE only
        "recipe": to_dict(cfg.kd_recipe),
        "label_seeds": seeds,
        "teacher": {"arch": t_arch.to_dict(), "best_acc": float(t_metrics["best_acc"]),
                    "final_acc": float(t_metrics.get("final_acc", t_metrics["best_acc"])),
                    "macs": macs(t_arch, space, tr.num_classes), "params": params(t_arch, space, tr.num_classes),
                    "onehot": onehot(t_arch, space), "fmap": t_map, "proxy_digest": proxy_state_sha256(t.teacher_sd)},
        "students": {
            "arch": [r["arch"] for r in first],
            "onehot": onehot_batch(archs, space),
            "fmap": fmaps,
            "best_acc": acc["best_acc"].mean(1),
            "final_acc": acc["final_acc"].mean(1),
            "final_loss": acc["final_loss"].mean(1),
            "best_acc_seeds": acc["best_acc"],
            "final_acc_seeds": acc["final_acc"],
            "macs": torch.tensor([r["macs"] for r in first], dtype=torch.int64),
            "params": torch.tensor([r["params"] for r in first], dtype=torch.int64),
            "wall_s": acc["wall_s"].mean(1),
            "seed": torch.full((n,), seeds[0], dtype=torch.int64),
        },
        "dataset_feats": t.dataset_features(cfg.feats_per_class, cfg.max_feats),
    }
    path = Path(cfg.out) / f"{task.key}.pt"
    save_task_db(d, path)
    return path, {"best_acc_seeds": acc["best_acc"], "final_acc_seeds": acc["final_acc"]}


def _merge_id(cfg: DatabaseConfig, jobs: list[StudentJob]) -> str:
    """What a task file is made of: its jobs and the merge settings (same id = same file)."""
    return content_hash([FORMAT, [j.student_id for j in jobs], cfg.noise_seed, cfg.remap, cfg.feats_per_class,
                         cfg.max_feats, to_dict(cfg.kd_recipe)])


def task_row(key: str, split: str, teacher_acc, students: int, seeds: list[int], best_acc_seeds=None) -> dict:
    """A manifest/validation row: counts, teacher accuracy and the agreement of the label seeds."""
    r, rel = seed_agreement(best_acc_seeds) if best_acc_seeds is not None else (None, None)
    return {"key": key, "split": split, "teacher_best_acc": None if teacher_acc is None else round(float(teacher_acc), 2),
            "students": students, "label_seeds": list(seeds), "seed_spearman": r, "reliability": rel}


def merge(cfg: DatabaseConfig, plan, tasks: dict[str, Task]) -> dict:
    """Write the task file of every task whose students are all done (tasks still running, or still
    without a teacher, are listed as not done); a task file already made of the same jobs is kept."""
    out = Path(cfg.out)
    old = {}
    if (out / "manifest.json").is_file():
        old = {r["key"]: r for r in read_json(out / "manifest.json").get("tasks", []) if isinstance(r, dict)}
    rows, walls = [], []
    for task in cfg.all_tasks:
        jobs = plan.get(task.key)
        seeds = cfg.seeds(task.split)
        n = cfg.labelled(task.split)
        if jobs is None:       # teacher not trained yet
            rows.append({**task_row(task.key, task.split, None, n, seeds), "dataset": task.dataset,
                         "runs": n * len(seeds), "done": 0, "file": None})
            continue
        seeds = job_seeds(jobs)
        results = finished_results(cfg, jobs)
        walls += [r["wall_s"] for r in results]
        teacher_acc = (tasks[task.key].teacher_meta.get("metrics") or {}).get("best_acc")
        row = {**task_row(task.key, task.split, teacher_acc, n, seeds), "dataset": task.dataset,
               "runs": len(jobs), "done": len(results), "file": None}
        if len(results) == len(jobs):
            mid = _merge_id(cfg, jobs)
            prev = old.get(task.key, {})
            if (prev.get("merge_id") == mid and prev.get("file") and (out / prev["file"]).is_file()
                    and prev.get("sha256") == file_sha256(out / prev["file"])):
                row = prev                                  # unchanged since the last merge (not edited since)
            else:
                path, acc = merge_task(cfg, task, results, seeds, tasks)
                row = {**task_row(task.key, task.split, teacher_acc, n, seeds, acc["best_acc_seeds"]),
                       "dataset": task.dataset, "runs": len(jobs), "done": len(results), "file": path.name,
                       "merge_id": mid, "sha256": file_sha256(path)}
        rows.append(row)
    # tasks of the config that splits/only leave out of this build keep their rows (a build split by
    # split adds to one database); tasks no longer in the config drop out (their files are ignored)
    built = {t.key for t in cfg.all_tasks}
    listed = {t.key for t in dataclasses.replace(cfg, splits=list(META_SPLITS), only=[]).all_tasks}
    rows += [r for k, r in old.items() if k in listed and k not in built]
    manifest = {"format": FORMAT, "space": to_dict(build_space(tasks)), "kd": to_dict(cfg.kd_recipe),
                "remap": cfg.remap, "noise_seed": cfg.noise_seed, "tasks": rows,
                "complete": all(r["file"] for r in rows)}
    atomic_write_json(out / "manifest.json", manifest)
    log_ = {"students_done": len(walls), "student_seconds_total": float(sum(walls)),
            "student_seconds_mean": float(np.mean(walls)) if walls else None,
            "student_seconds_median": float(np.median(walls)) if walls else None}
    atomic_write_json(out / "build_log.json", log_)
    return manifest


def record_teacher_digests(root) -> list[dict]:
    """Add ``teacher.proxy_digest`` (:mod:`dass.database.format`) to every task file of the database
    ``root`` (a union's members included) whose ``task.teacher_ckpt`` exists: the digest of the
    teacher's state dict as meta-training's proxy inputs load it (:meth:`dass.task.Task.teacher_sd`
    of :meth:`~dass.task.Task.from_saved`), so that a proxy cache is looked up the same way without
    the checkpoint. Files rewritten atomically, and a manifest row's ``sha256`` of a rewritten file
    follows it (the merge would otherwise take the file for a hand edit and redo it). A file that
    already records the same digest is left as it is; a task without a readable teacher checkpoint
    is skipped. A file recording another digest is an error, raised before anything is written.
    Returns one row per task file: ``{file, status (recorded | unchanged | no teacher), digest |
    teacher_ckpt}``."""
    rows, changed = [], []
    for path, _ in db_task_files(root):
        d = load_task_db(path)
        ckpt = str(d["task"].get("teacher_ckpt") or "")
        if not ckpt or not Path(ckpt).is_file():
            rows.append({"file": str(path), "status": "no teacher", "teacher_ckpt": ckpt})
            continue
        digest = proxy_state_sha256(Task.from_saved(SavedTask.from_db(d)).teacher_sd)
        old = d["teacher"].get("proxy_digest")
        if old is not None and old != digest:
            raise DassError(f"{path}: records teacher.proxy_digest {old[:16]}..., its teacher checkpoint {ckpt} "
                            f"has {digest[:16]}...: another teacher than the one the task was built with?")
        rows.append({"file": str(path), "status": "unchanged" if old == digest else "recorded", "digest": digest})
        if old is None:
            d["teacher"]["proxy_digest"] = digest
            changed.append((Path(path), d))
    for path, d in changed:
        _rewrite_task_file(path, d)
    return rows


def _rewrite_task_file(path: Path, d: dict) -> None:
    """Save task ``d`` over ``path``; the manifest row that recorded the old file's sha256 records the new one."""
    before = file_sha256(path)
    save_task_db(d, path)
    manifest = read_manifest(path.parent)
    rows = [r for r in (manifest or {}).get("tasks", []) if r.get("file") == path.name and r.get("sha256") == before]
    for r in rows:
        r["sha256"] = file_sha256(path)
    if rows:
        atomic_write_json(path.parent / "manifest.json", manifest)
