"""The database build's plan: where a task's teacher and logit cache live, the tasks' data and
teachers as :class:`~dass.task.Task` objects (:func:`build_tasks`), the sampled students of every task (spread
over the MACs range, see :mod:`dass.database.builder`) and their jobs, label seeds and groups."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from ..config import to_dict
from ..errors import DassError
from ..hashing import arrays_sha256, file_sha256
from ..io import read_json
from ..space import Arch, SpaceConfig, load_space, macs, sample
from ..task import Task
from .config import DatabaseConfig, TaskSpec
from .format import seed_agreement, spearman_brown
from .jobs import JobGroup, StudentJob, content_hash


def teacher_path(cfg: DatabaseConfig, task: TaskSpec) -> Path:
    if task.teacher:
        return Path(task.teacher)
    return Path(cfg.teachers_dir or Path(cfg.work_dir) / "teachers") / task.key / "teacher.pt"


def logit_cache_dir(cfg: DatabaseConfig, task: TaskSpec) -> Path:
    """Where the task's teacher-logit caches live (``dass/train/logit_cache.py``)."""
    return Path(cfg.work_dir) / "teacher_logits" / task.key


def sample_students(space: SpaceConfig, n: int, seed: int, pool_factor: int, num_classes: int) -> list[Arch]:
    """``n`` distinct architectures spread over the MACs range (see module doc)."""
    rng = np.random.default_rng(seed)
    pool = list({sample(space, rng) for _ in range(pool_factor * n)})
    pool.sort(key=lambda a: (macs(a, space, num_classes), str(a)))
    if len(pool) < n:
        raise DassError(f"the space has fewer than {n} distinct architectures to sample")
    edges = np.linspace(0, len(pool), n + 1).astype(int)
    return [pool[int(rng.integers(lo, hi))] for lo, hi in zip(edges[:-1], edges[1:])]


def evenly(archs: list[Arch], k: int) -> list[Arch]:
    """``k`` of ``archs`` (sorted by MACs) at evenly spaced positions, first and last included."""
    if k >= len(archs):
        return list(archs)
    return [archs[int(i)] for i in np.linspace(0, len(archs) - 1, k).round().astype(int)]


def _task_seed(base: int, key: str) -> int:
    return base * 1_000_003 + zlib.crc32(key.encode())


def build_tasks(cfg: DatabaseConfig) -> dict[str, Task]:
    """Every task of the build as a :class:`~dass.task.Task` by key (one space for all; the map
    settings ``remap`` and ``noise_seed``): a process loads each task's data and teacher once, on
    first use."""
    space = load_space(cfg.space)
    return {t.key: Task(space, t.dataset, cfg.data_root, teacher_path(cfg, t), remap=cfg.remap,
                        noise_seed=cfg.noise_seed, device=cfg.device) for t in cfg.all_tasks}


def build_space(tasks: dict[str, Task]) -> SpaceConfig:
    """The space the build's tasks share."""
    return next(iter(tasks.values())).space


def finished_results(cfg: DatabaseConfig, jobs: list[StudentJob]) -> list[dict]:
    """The result records of the finished jobs, in job order."""
    return [read_json(p) for p in (j.result_path(cfg.work_dir) for j in jobs) if p.is_file()]


def per_seed(results: list[dict], seeds: list[int], key: str) -> torch.Tensor:
    """``[N, S]`` float32 of ``key`` from records ordered seed-major (all students of seed 0, then 1...)."""
    n = len(results) // len(seeds)
    return torch.tensor([[results[s * n + i][key] for s in range(len(seeds))] for i in range(n)],
                        dtype=torch.float32)


def plan_students(cfg: DatabaseConfig, tasks: dict[str, Task],
                  missing_teachers_ok: bool = False) -> dict[str, list[StudentJob]]:
    """Every student job of every task, in a deterministic order (needs the teachers): per task,
    for each label seed in turn, every sampled architecture. A task whose teacher is not there yet
    is left out when ``missing_teachers_ok`` (a merge while the build still runs), else an error."""
    plan = {}
    space_d = to_dict(build_space(tasks))
    kd_d = to_dict(cfg.kd_recipe)
    for task in cfg.all_tasks:
        tr, te = tasks[task.key].train, tasks[task.key].test
        n = cfg.students.get(task.split, 0)
        tpath = teacher_path(cfg, task)
        if not tpath.is_file():
            if missing_teachers_ok:
                continue
            raise DassError(f"task {task.key}: teacher checkpoint missing: {tpath}")
        ident = {"space": space_d, "data": [arrays_sha256(tr)[:20], arrays_sha256(te)[:20]], "teacher": file_sha256(tpath),
                 "kd": kd_d, "remap": cfg.train_remap}
        base = content_hash(ident)
        archs = sample_students(tasks[task.key].space, n, _task_seed(cfg.sample_seed, task.key), cfg.pool_factor,
                                tr.num_classes)
        archs = evenly(archs, cfg.labelled(task.split))   # the same students as the full build, or a subset
        def jobs(seeds):
            return [StudentJob(task.key, a.to_dict(), seed, content_hash([base, a.to_dict(), seed]))
                    for seed in seeds for a in archs]
        plan[task.key] = jobs(task_seeds(cfg, task, jobs(cfg.seeds(task.split))))
    return plan


def seeds_needed(r: float | None, target: float, have: int, cap: int) -> int:
    """The smallest number of seeds ``k >= have`` whose mean label reaches the Spearman-Brown
    reliability ``target`` when two seeds agree at ``r``; ``cap`` when no ``k <= cap`` does (``r <= 0``
    included); ``have`` when ``r`` is None (a constant label: nothing to rank)."""
    if r is None:
        return have
    for k in range(have, cap + 1):
        if r > 0 and spearman_brown(r, k) >= target:
            return k
    return max(have, cap)


def task_seeds(cfg: DatabaseConfig, task: TaskSpec, base_jobs: list[StudentJob]) -> list[int]:
    """The KD seeds of ``task``: its split's ``label_seeds``, and, where ``target_reliability`` names
    the split and every run of those seeds is finished, as many more seeds (the next integers after
    the largest) as the Spearman-Brown formula says the label needs to reach the target, given the
    agreement of the first seeds, up to ``max_label_seeds``. The decision reads the first seeds'
    results only, so it is the same on every rerun (a resumed build neither loses nor adds runs)."""
    base = cfg.seeds(task.split)
    target = cfg.target_reliability.get(task.split)
    if not target:
        return base
    results = finished_results(cfg, base_jobs)
    if len(results) < len(base_jobs):
        return base      # undecided until the first seeds are done
    r, _ = seed_agreement(per_seed(results, base, "best_acc"))
    k = seeds_needed(r, target, len(base), cfg.max_label_seeds)
    return base + [max(base) + i for i in range(1, k - len(base) + 1)]


def job_seeds(jobs: list[StudentJob]) -> list[int]:
    """The seeds of a task's jobs, in plan order (seed-major)."""
    return list(dict.fromkeys(j.seed for j in jobs))


def group_jobs(plan: dict[str, list[StudentJob]], k: int) -> list[JobGroup]:
    """Groups of up to ``k`` jobs of one task and one seed (a lockstep group shares its seed)."""
    groups = []
    for key, jobs in plan.items():
        by_seed: dict[int, list[StudentJob]] = {}
        for j in jobs:
            by_seed.setdefault(j.seed, []).append(j)
        for same in by_seed.values():
            for i in range(0, len(same), k):
                groups.append(JobGroup(key, same[i:i + k]))
    return groups


def interleave_tasks(groups: list[JobGroup]) -> list[JobGroup]:
    """The groups round-robin over their tasks (first group of every task, then the second ...), so
    parallel workers start on different tasks and each computes another task's teacher logits."""
    per_task: dict[str, list[JobGroup]] = {}
    for g in groups:
        per_task.setdefault(g.task, []).append(g)
    lanes = list(per_task.values())
    return [lane[i] for i in range(max(map(len, lanes), default=0)) for lane in lanes if i < len(lane)]
