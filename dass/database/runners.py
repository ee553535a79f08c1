"""The database build's jobs: train a task's teacher (:func:`run_teacher_job`), KD-train a group of
students (:func:`run_group`, one result file per student), and the check that a teacher found in
place was trained for the same data, recipe and seed (:func:`check_trained_teachers`)."""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import torch

from ..config import to_dict
from ..errors import DassError
from ..hashing import dataset_hash
from ..io import atomic_write_json, safe_torch_load
from ..space import Arch, macs, params
from ..task import Task
from ..teacher.checkpoint import save_teacher
from ..train import fit_teacher
from ..train.kd_setting import KDSetting
from ..train.lockstep import kd_train_many
from ..device import resolve_device
from ..train.distributed import single_process
from ..train.recipe import TeacherRecipe
from .config import DatabaseConfig, TaskSpec
from .jobs import JobGroup
from .plan import build_tasks, logit_cache_dir, teacher_path

log = logging.getLogger("dass.database")


def set_threads(cfg: DatabaseConfig):
    n = cfg.threads_per_worker or max(1, (os.cpu_count() or 1) // cfg.workers)
    torch.set_num_threads(n)


def run_teacher_job(cfg: DatabaseConfig, task: TaskSpec, tasks: dict[str, Task] | None = None) -> str:
    path = teacher_path(cfg, task)
    if path.is_file():
        return "skipped"
    t = (tasks or build_tasks(cfg))[task.key]
    tr, te = t.train, t.test
    run_dir = Path(cfg.work_dir) / "teachers" / task.key  # resumable checkpoints; teacher.pt goes to ``path``
    recipe = teacher_recipe(cfg, task)
    sd, metrics = fit_teacher(t.space, tr, te, recipe, seed=cfg.teacher_seed, run_dir=run_dir,
                              ctx=single_process(resolve_device(cfg.device)))
    save_teacher(path, sd, t.space, tr.num_classes, task.dataset, metrics,
                 recipe=recipe, seed=cfg.teacher_seed, data=teacher_data_identity(tr, te))
    return "done"


def teacher_recipe(cfg: DatabaseConfig, task: TaskSpec) -> TeacherRecipe:
    """The recipe of the teacher the build trains for ``task``: ``teacher_lr`` replaces the lr and
    ``teacher_epochs`` the epochs (the schedule ends where the run ends) where they are set."""
    changes = {k: v for k, v in (("lr", task.teacher_lr), ("epochs", task.teacher_epochs)) if v > 0}
    return dataclasses.replace(cfg.teacher_recipe, **changes) if changes else cfg.teacher_recipe


def teacher_data_identity(train, test) -> dict:
    """What a trained teacher records of its data: :func:`dass.hashing.dataset_hash` of both splits."""
    return {"train": dataset_hash(train), "test": dataset_hash(test)}


def check_trained_teachers(cfg: DatabaseConfig, tasks: dict[str, Task]) -> None:
    """A teacher the build would train but finds already there must have been trained for the same
    dataset, on the same data (its recorded data identity, :func:`teacher_data_identity`), with the
    same recipe and seed (as recorded in it); else a one-line error: the build never silently reuses
    a teacher of other data or another recipe. Files that record no recipe or no data identity are
    reused with a warning."""
    for task in cfg.all_tasks:
        path = teacher_path(cfg, task)
        if task.teacher or not path.is_file():
            continue
        ck = safe_torch_load(path)
        if not isinstance(ck, dict):
            continue
        if ck.get("dataset") not in (None, task.dataset):
            raise DassError(f"{path}: a teacher of dataset {ck['dataset']!r}, not of task {task.key}'s {task.dataset!r}")
        data = ck.get("data")
        if isinstance(data, dict):
            now = teacher_data_identity(tasks[task.key].train, tasks[task.key].test)
            changed = [k for k in ("train", "test") if data.get(k) != now[k]]
            if changed:
                raise DassError(f"{path}: trained on other data than task {task.key}'s {task.dataset} holds now "
                                f"(its {changed[0]} split changed): delete it or set another teachers_dir to retrain")
        else:
            log.warning("%s records no data identity: reused as the teacher of %s as it is", path, task.key)
        rec = ck.get("recipe")
        if not isinstance(rec, dict):
            log.warning("%s records no recipe: reused as the teacher of %s as it is", path, task.key)
            continue
        want = {**to_dict(teacher_recipe(cfg, task)), "seed": cfg.teacher_seed}
        have = {**rec, "seed": ck.get("seed", cfg.teacher_seed)}
        diff = sorted(k for k in have if k in want and have[k] != want[k])
        if diff:
            raise DassError(f"{path}: trained with another teacher recipe ({diff[0]}: {have[diff[0]]!r}, the config "
                            f"says {want[diff[0]]!r}); delete it or set another teachers_dir to retrain")


def run_group(cfg: DatabaseConfig, group: JobGroup, tasks: dict[str, Task] | None = None) -> int:
    """KD-train the unfinished students of ``group``; returns how many were trained."""
    todo = [j for j in group.jobs if not j.result_path(cfg.work_dir).is_file()]
    if not todo:
        return 0
    task = cfg.task(group.task)
    t = (tasks or build_tasks(cfg))[task.key]
    tr, te = t.train, t.test
    archs = [Arch.from_dict(j.arch) for j in todo]
    dev = resolve_device(cfg.device)
    seed = todo[0].seed
    cache = logit_cache_dir(cfg, task) if cfg.teacher_logit_cache else None
    t0 = time.perf_counter()
    setting = KDSetting(t.space, t.teacher_sd, tr, te, cfg.kd_recipe, remap=cfg.train_remap, device=dev,
                        logit_cache=cache, wait_for_cache=False)
    results = kd_train_many(archs, setting, seed)
    wall = (time.perf_counter() - t0) / len(archs)
    for j, r in zip(todo, results):
        rec = {k: r[k] for k in ("best_acc", "final_acc", "final_loss")}
        rec.update(arch=j.arch, seed=j.seed, student_id=j.student_id, task=j.task,
                   macs=macs(Arch.from_dict(j.arch), t.space, tr.num_classes),
                   params=params(Arch.from_dict(j.arch), t.space, tr.num_classes),
                   wall_s=float(r.get("wall_s", wall)), group_wall_s=wall, history=r.get("history", []))
        atomic_write_json(j.result_path(cfg.work_dir), rec)
    return len(todo)
