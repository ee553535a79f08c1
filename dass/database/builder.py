"""Build the meta-training database: teachers, sampled students, KD labels, functional maps.

Phases (each resumable, see ``jobs.py``):

1. ``teachers``: every task without a given teacher checkpoint gets one trained with the teacher
   recipe into ``<work_dir>/teachers/<task>/teacher.pt`` (skipped when present).
2. ``students``: per task, ``n`` architectures are sampled (seeded by ``sample_seed`` and the task
   key, no duplicates, spread over the MACs range: a uniform pool of ``pool_factor * n`` is sorted
   by MACs, cut into ``n`` equal bins and one architecture drawn per bin), each KD-trained from its
   remapped initialisation once per label seed of its split; one JSON result per (student, seed).
   The teacher's logits are computed once per task and seed and shared by all its groups
   (``teacher_logit_cache``, see ``dass/train/logit_cache.py``).
3. ``merge``: per task whose jobs are all done (others may still run), the functional maps
   (batched), encodings, teacher map/accuracy and dataset features are computed and written with
   the per-seed accuracies and their mean (the label) as one task file (``format.py``) into
   ``out``, with ``manifest.json`` (per task: counts, teacher accuracy, seed agreement) and
   ``build_log.json`` (time per student).

Tasks are ``tasks`` plus the class-subset tasks of ``subset_tasks`` (``subsets.py``); the build
refuses a config whose meta-train tasks share a class with a meta-valid or meta-test task. The work
folder gets a ``.gitignore`` so it can live in a git-tracked folder (docs/DATABASE.md).

Launchers: ``local`` (in process, or ``workers`` spawned processes), ``torchrun`` (run the same
command under torchrun: ranks share the job list by index and meet at a barrier after each phase),
``slurm`` (submitit job arrays with ``slurm.array_parallelism`` as concurrency cap; ``slurm.cluster:
local`` runs the same path on this machine).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .. import runid
from ..cli import setup_run_dir_of_rank
from ..config import from_dict, to_dict
from ..data.registry import load_dataset
from ..errors import DassError
from ..hashing import arrays_sha256, dataset_hash, file_sha256
from ..io import atomic_write_json, atomic_write_text, read_json, safe_torch_load
from ..space import Arch, SpaceConfig, load_space, macs, onehot, onehot_batch, params, sample, teacher_arch
from ..teacher.checkpoint import load_teacher, save_teacher
from ..teacher.inputs import candidate_maps, dataset_features, teacher_map
from ..train import kd_train, kd_train_many, fit_teacher
from ..train.distributed import resolve_device
from ..train.recipe import TeacherRecipe
from .config import DatabaseConfig, TaskSpec
from .format import FORMAT, save_task_db, seed_agreement, spearman_brown
from .jobs import JobGroup, StudentJob, content_hash
from .splits import SPLITS
from .subsets import check_disjoint

log = logging.getLogger("dass.database")


# --------------------------------------------------------------------------------------------- helpers

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


def _task_seed(base: int, key: str) -> int:
    return base * 1_000_003 + zlib.crc32(key.encode())


class TaskCache:
    """Per-process cache of the tasks' datasets and teachers (workers load each once)."""

    def __init__(self, cfg: DatabaseConfig):
        self.cfg = cfg
        self.space = load_space(cfg.space)
        self._data: dict = {}
        self._teachers: dict = {}

    def data(self, task: TaskSpec):
        if task.key not in self._data:
            tr = load_dataset(task.dataset, self.cfg.data_root, "train")
            te = load_dataset(task.dataset, self.cfg.data_root, "test")
            if tr.num_classes != te.num_classes:
                raise DassError(f"{task.dataset}: train and test class counts differ")
            self._data[task.key] = (tr, te)
        return self._data[task.key]

    def teacher(self, task: TaskSpec):
        if task.key not in self._teachers:
            tr, _ = self.data(task)
            self._teachers[task.key] = load_teacher(teacher_path(self.cfg, task), self.space, tr.num_classes)
        return self._teachers[task.key]


# --------------------------------------------------------------------------------------------- job runners

def _set_threads(cfg: DatabaseConfig):
    n = cfg.threads_per_worker or max(1, (os.cpu_count() or 1) // cfg.workers)
    torch.set_num_threads(n)


def run_teacher_job(cfg: DatabaseConfig, task: TaskSpec, task_cache: TaskCache | None = None) -> str:
    path = teacher_path(cfg, task)
    if path.is_file():
        return "skipped"
    task_cache = task_cache or TaskCache(cfg)
    tr, te = task_cache.data(task)
    run_dir = Path(cfg.work_dir) / "teachers" / task.key  # resumable checkpoints; teacher.pt goes to ``path``
    recipe = teacher_recipe(cfg, task)
    sd, metrics = fit_teacher(task_cache.space, tr, te, recipe, seed=cfg.teacher_seed,
                                device=resolve_device(cfg.device), run_dir=run_dir)
    save_teacher(path, sd, task_cache.space, tr.num_classes, task.dataset, metrics,
                 recipe=recipe, seed=cfg.teacher_seed, data=teacher_data_identity(tr, te))
    return "done"


def teacher_recipe(cfg: DatabaseConfig, task: TaskSpec) -> TeacherRecipe:
    """The recipe of the teacher the build trains for ``task`` (``teacher_lr`` replaces the lr)."""
    if task.teacher_lr > 0:
        return dataclasses.replace(cfg.teacher_recipe, lr=task.teacher_lr)
    return cfg.teacher_recipe


def teacher_data_identity(train, test) -> dict:
    """What a trained teacher records of its data: :func:`dass.hashing.dataset_hash` of both splits."""
    return {"train": dataset_hash(train), "test": dataset_hash(test)}


def check_trained_teachers(cfg: DatabaseConfig, task_cache: TaskCache) -> None:
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
            now = teacher_data_identity(*task_cache.data(task))
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


def run_group(cfg: DatabaseConfig, group: JobGroup, task_cache: TaskCache | None = None) -> int:
    """KD-train the unfinished students of ``group``; returns how many were trained."""
    todo = [j for j in group.jobs if not j.result_path(cfg.work_dir).is_file()]
    if not todo:
        return 0
    task_cache = task_cache or TaskCache(cfg)
    task = cfg.task(group.task)
    tr, te = task_cache.data(task)
    _, sd, _ = task_cache.teacher(task)
    archs = [Arch.from_dict(j.arch) for j in todo]
    dev = resolve_device(cfg.device)
    seed = todo[0].seed
    cache = logit_cache_dir(cfg, task) if cfg.teacher_logit_cache else None
    t0 = time.perf_counter()
    if len(archs) == 1:
        results = [kd_train(archs[0], task_cache.space, sd, tr, te, cfg.kd, seed=seed, device=dev, remap=cfg.train_remap,
                            logit_cache=cache, wait_for_cache=False)]
    else:
        results = kd_train_many(archs, task_cache.space, sd, tr, te, cfg.kd, seed=seed, device=dev, remap=cfg.train_remap,
                                logit_cache=cache, wait_for_cache=False)
    wall = (time.perf_counter() - t0) / len(archs)
    for j, r in zip(todo, results):
        rec = {k: r[k] for k in ("best_acc", "final_acc", "final_loss")}
        rec.update(arch=j.arch, seed=j.seed, student_id=j.student_id, task=j.task,
                   macs=macs(Arch.from_dict(j.arch), task_cache.space, tr.num_classes),
                   params=params(Arch.from_dict(j.arch), task_cache.space, tr.num_classes),
                   wall_s=float(r.get("wall_s", wall)), group_wall_s=wall, history=r.get("history", []))
        atomic_write_json(j.result_path(cfg.work_dir), rec)
    return len(todo)


def _worker_init(cfg_dict):
    global _WORKER_STATE
    cfg = from_dict(DatabaseConfig, cfg_dict)
    _set_threads(cfg)
    _WORKER_STATE = (cfg, TaskCache(cfg))


_WORKER_STATE = None


def _worker_teacher(task_key: str):
    cfg, task_cache = _WORKER_STATE
    return run_teacher_job(cfg, cfg.task(task_key), task_cache)


def _worker_group(group: JobGroup):
    cfg, task_cache = _WORKER_STATE
    return run_group(cfg, group, task_cache)


def _submitit_teacher(cfg_dict, task_key):
    _worker_init(cfg_dict)
    return _worker_teacher(task_key)


def _submitit_groups(cfg_dict, groups):
    _worker_init(cfg_dict)
    return sum(_worker_group(g) for g in groups)


# --------------------------------------------------------------------------------------------- planning

def plan_students(cfg: DatabaseConfig, task_cache: TaskCache,
                  missing_teachers_ok: bool = False) -> dict[str, list[StudentJob]]:
    """Every student job of every task, in a deterministic order (needs the teachers): per task,
    for each label seed in turn, every sampled architecture. A task whose teacher is not there yet
    is left out when ``missing_teachers_ok`` (a merge while the build still runs), else an error."""
    plan = {}
    space_d = to_dict(task_cache.space)
    kd_d = to_dict(cfg.kd)
    for task in cfg.all_tasks:
        tr, te = task_cache.data(task)
        n = cfg.students.get(task.split, 0)
        tpath = teacher_path(cfg, task)
        if not tpath.is_file():
            if missing_teachers_ok:
                continue
            raise DassError(f"task {task.key}: teacher checkpoint missing: {tpath}")
        ident = {"space": space_d, "data": [arrays_sha256(tr)[:20], arrays_sha256(te)[:20]], "teacher": file_sha256(tpath),
                 "kd": kd_d, "remap": cfg.train_remap}
        base = content_hash(ident)
        archs = sample_students(task_cache.space, n, _task_seed(cfg.sample_seed, task.key), cfg.pool_factor,
                                tr.num_classes)
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
    r, _ = seed_agreement(_per_seed(results, base, "best_acc"))
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


# --------------------------------------------------------------------------------------------- launchers

def _dist():
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def _barrier(world: int):
    if world > 1:
        dist.barrier()


def _run_local(cfg: DatabaseConfig, kind: str, items: list, desc: str) -> None:
    if not items:
        return
    if cfg.workers == 1:
        _worker_init(to_dict(cfg))
        fn = _worker_teacher if kind == "teacher" else _worker_group
        for it in tqdm(items, desc=desc, unit="job"):
            fn(it)
        return
    spawn = mp.get_context("spawn")
    fn = _worker_teacher if kind == "teacher" else _worker_group
    with spawn.Pool(cfg.workers, initializer=_worker_init, initargs=(to_dict(cfg),)) as pool:
        for _ in tqdm(pool.imap_unordered(fn, items), total=len(items), desc=desc, unit="job"):
            pass
        # a clean shutdown: workers exit on their own (the context's terminate() alone leaves a
        # "leaked semaphore" warning behind)
        pool.close()
        pool.join()


def _run_slurm(cfg: DatabaseConfig, kind: str, items: list, desc: str) -> None:
    if not items:
        return
    try:
        import submitit  # lazy: optional dependency, only for launcher=slurm
    except ImportError:
        raise DassError("launcher=slurm needs submitit: pip install submitit") from None
    folder = Path(cfg.work_dir) / "submitit"
    ex = submitit.AutoExecutor(folder=str(folder), cluster=None if cfg.slurm.cluster == "slurm" else cfg.slurm.cluster)
    params_ = {"timeout_min": cfg.slurm.timeout_min, "cpus_per_task": cfg.slurm.cpus_per_task}
    if cfg.slurm.cluster == "slurm":
        params_.update(slurm_array_parallelism=cfg.slurm.array_parallelism)
        if cfg.slurm.partition:
            params_["slurm_partition"] = cfg.slurm.partition
        if cfg.slurm.gpus_per_node:
            params_["gpus_per_node"] = cfg.slurm.gpus_per_node
    ex.update_parameters(**params_)
    cfg_d = to_dict(cfg)
    if kind == "teacher":
        jobs = ex.map_array(_submitit_teacher, [cfg_d] * len(items), items)
    else:
        k = cfg.slurm.groups_per_job
        chunks = [items[i:i + k] for i in range(0, len(items), k)]
        jobs = ex.map_array(_submitit_groups, [cfg_d] * len(chunks), chunks)
    log.info("%s: submitted %d array tasks to %s", desc, len(jobs), folder)
    for j in jobs:
        j.result()


def _run(cfg: DatabaseConfig, kind: str, items: list, desc: str, rank: int, world: int) -> None:
    if cfg.launcher == "slurm":
        if rank == 0:
            _run_slurm(cfg, kind, items, desc)
    elif cfg.launcher == "torchrun" or world > 1:
        mine = items[rank::world]
        _worker_init(to_dict(cfg))
        fn = _worker_teacher if kind == "teacher" else _worker_group
        for it in tqdm(mine, desc=f"{desc} [rank {rank}/{world}]", unit="job", disable=rank != 0):
            fn(it)
    else:
        _run_local(cfg, kind, items, desc)
    _barrier(world)


# --------------------------------------------------------------------------------------------- merge

def finished_results(cfg: DatabaseConfig, jobs: list[StudentJob]) -> list[dict]:
    """The result records of the finished jobs, in job order."""
    return [read_json(p) for p in (j.result_path(cfg.work_dir) for j in jobs) if p.is_file()]


def _per_seed(results: list[dict], seeds: list[int], key: str) -> torch.Tensor:
    """``[N, S]`` float32 of ``key`` from records ordered seed-major (all students of seed 0, then 1...)."""
    n = len(results) // len(seeds)
    return torch.tensor([[results[s * n + i][key] for s in range(len(seeds))] for i in range(n)],
                        dtype=torch.float32)


def merge_task(cfg: DatabaseConfig, task: TaskSpec, results: list[dict], seeds: list[int],
               task_cache: TaskCache) -> tuple[Path, dict]:
    """Write the task file from the records of all its students and ``seeds`` (in plan order:
    seed-major); returns its path and the students' per-seed accuracies ``{best_acc_seeds, final_acc_seeds}``."""
    tr, _ = task_cache.data(task)
    net, sd, meta = task_cache.teacher(task)
    space = task_cache.space
    n = len(results) // len(seeds)
    first = results[:n]                       # the records of the first seed give the architectures
    archs = [Arch.from_dict(r["arch"]) for r in first]
    dev = resolve_device(cfg.device)
    fmaps = candidate_maps(archs, sd, space, tr.num_classes, cfg.noise_seed, strategy=cfg.remap, device=dev)
    t_arch = teacher_arch(space)
    t_map = teacher_map(sd, space, tr.num_classes, cfg.noise_seed, cfg.remap, device=dev)
    t_metrics = meta.get("metrics", {}) or {}
    if "best_acc" not in t_metrics:
        raise DassError(f"task {task.key}: teacher checkpoint has no metrics.best_acc")
    acc = {k: _per_seed(results, seeds, k) for k in ("best_acc", "final_acc", "final_loss", "wall_s")}
    d = {
        "format": FORMAT,
        "task": {"key": task.key, "dataset": task.dataset, "split": task.split, "num_classes": tr.num_classes,
                 "teacher_ckpt": str(teacher_path(cfg, task)), "data_root": cfg.data_root},
        "space": to_dict(space),
        "noise_seed": cfg.noise_seed,
        "remap": cfg.remap,
        **({"scratch": True} if cfg.scratch else {}),   # labels from random initialisation, CE only
        "recipe": to_dict(cfg.kd),
        "label_seeds": seeds,
        "teacher": {"arch": t_arch.to_dict(), "best_acc": float(t_metrics["best_acc"]),
                    "final_acc": float(t_metrics.get("final_acc", t_metrics["best_acc"])),
                    "macs": macs(t_arch, space, tr.num_classes), "params": params(t_arch, space, tr.num_classes),
                    "onehot": onehot(t_arch, space), "fmap": t_map},
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
        "dataset_feats": dataset_features(net, tr, cfg.feats_per_class, cfg.max_feats, cfg.noise_seed,
                                          space.image_size, dev),
    }
    path = Path(cfg.out) / f"{task.key}.pt"
    save_task_db(d, path)
    return path, {"best_acc_seeds": acc["best_acc"], "final_acc_seeds": acc["final_acc"]}


def _merge_id(cfg: DatabaseConfig, jobs: list[StudentJob]) -> str:
    """What a task file is made of: its jobs and the merge settings (same id = same file)."""
    return content_hash([FORMAT, [j.student_id for j in jobs], cfg.noise_seed, cfg.remap, cfg.feats_per_class,
                         cfg.max_feats, to_dict(cfg.kd)])


def task_row(key: str, split: str, teacher_acc, students: int, seeds: list[int], best_acc_seeds=None) -> dict:
    """A manifest/validation row: counts, teacher accuracy and the agreement of the label seeds."""
    r, rel = seed_agreement(best_acc_seeds) if best_acc_seeds is not None else (None, None)
    return {"key": key, "split": split, "teacher_best_acc": None if teacher_acc is None else round(float(teacher_acc), 2),
            "students": students, "label_seeds": list(seeds), "seed_spearman": r, "reliability": rel}


def merge(cfg: DatabaseConfig, plan, task_cache: TaskCache) -> dict:
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
        n = cfg.students.get(task.split, 0)
        if jobs is None:       # teacher not trained yet
            rows.append({**task_row(task.key, task.split, None, n, seeds), "dataset": task.dataset,
                         "runs": n * len(seeds), "done": 0, "file": None})
            continue
        seeds = job_seeds(jobs)
        results = finished_results(cfg, jobs)
        walls += [r["wall_s"] for r in results]
        teacher_acc = task_cache.teacher(task)[2].get("metrics", {}).get("best_acc")
        row = {**task_row(task.key, task.split, teacher_acc, n, seeds), "dataset": task.dataset,
               "runs": len(jobs), "done": len(results), "file": None}
        if len(results) == len(jobs):
            mid = _merge_id(cfg, jobs)
            prev = old.get(task.key, {})
            if (prev.get("merge_id") == mid and prev.get("file") and (out / prev["file"]).is_file()
                    and prev.get("sha256") == file_sha256(out / prev["file"])):
                row = prev                                  # unchanged since the last merge (not edited since)
            else:
                path, acc = merge_task(cfg, task, results, seeds, task_cache)
                row = {**task_row(task.key, task.split, teacher_acc, n, seeds, acc["best_acc_seeds"]),
                       "dataset": task.dataset, "runs": len(jobs), "done": len(results), "file": path.name,
                       "merge_id": mid, "sha256": file_sha256(path)}
        rows.append(row)
    # tasks of the config that splits/only leave out of this build keep their rows (a build split by
    # split adds to one database); tasks no longer in the config drop out (their files are ignored)
    built = {t.key for t in cfg.all_tasks}
    listed = {t.key for t in dataclasses.replace(cfg, splits=list(SPLITS), only=[]).all_tasks}
    rows += [r for k, r in old.items() if k in listed and k not in built]
    manifest = {"format": FORMAT, "space": to_dict(task_cache.space), "kd": to_dict(cfg.kd), "remap": cfg.remap,
                "noise_seed": cfg.noise_seed, "tasks": rows,
                "complete": all(r["file"] for r in rows)}
    atomic_write_json(out / "manifest.json", manifest)
    log_ = {"students_done": len(walls), "student_seconds_total": float(sum(walls)),
            "student_seconds_mean": float(np.mean(walls)) if walls else None,
            "student_seconds_median": float(np.median(walls)) if walls else None}
    atomic_write_json(out / "build_log.json", log_)
    return manifest


# --------------------------------------------------------------------------------------------- entry

_WORK_GITIGNORE = """\
# Written by dass.database: keep results (*.json), logs, configs and trained teachers (teacher.pt)
# committable, never the resumable training checkpoints, caches or launcher folders.
*.pt
!teachers/*/teacher.pt
*.npy
*.npz
*.tmp
submitit/
teacher_logits/
"""


def write_work_gitignore(work_dir) -> None:
    """A ``.gitignore`` in the work folder, so it can live in a git-tracked folder (see module doc)."""
    path = Path(work_dir) / ".gitignore"
    if not path.is_file():
        atomic_write_text(path, _WORK_GITIGNORE)


# Config keys outside a database's build identity: where and how the build runs, which tasks and
# how many students and label seeds per split (a database grows by tasks, splits and seeds; each task
# file records its students and seeds, and is re-merged when they change).
BUILD_IDENTITY_FREE = ("out", "work_dir", "teachers_dir", "tasks", "subset_tasks", "splits", "only", "launcher",
                       "workers", "threads_per_worker", "lockstep", "teacher_logit_cache", "device", "slurm",
                       "data_root", "space", "students", "seed", "label_seeds", "target_reliability",
                       "max_label_seeds")


ASSETS = Path(__file__).resolve().parents[2] / "assets"   # the shipped databases, teachers and predictors


def _under(path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder)


def check_no_stray_asset_writes(cfg: DatabaseConfig) -> None:
    """A build whose ``out`` is not in the repository's ``assets/`` never trains a teacher into it
    (the shipped config's ``teachers_dir`` is there: its shipped teachers are reused read-only, a
    teacher it would have to train is refused before anything is written)."""
    if _under(cfg.out, ASSETS):
        return
    new = [teacher_path(cfg, t) for t in cfg.all_tasks if not t.teacher and not teacher_path(cfg, t).is_file()]
    inside = [p for p in new if _under(p, ASSETS)]
    if inside:
        raise DassError(f"teachers_dir={cfg.teachers_dir} lies in the shipped assets/ but out={cfg.out} does not: "
                        f"this build would train {inside[0]} there; give teachers_dir=<your folder> (or "
                        f"teachers_dir='' for <work_dir>/teachers)")


def build_identity(cfg: DatabaseConfig, space: SpaceConfig) -> dict:
    """The identity (:mod:`dass.runid`) that claims ``out``: the recipe of every task file (space
    content, KD and teacher recipes, sampling and teacher seeds, remap, map and feature settings),
    not the task list."""
    return runid.identity("database", to_dict(cfg), drop=BUILD_IDENTITY_FREE, space=to_dict(space))


def build(cfg: DatabaseConfig, stage: str = "all") -> dict | None:
    """Check every input, claim and lock ``out`` (rank 0: a database holds one build identity, and
    one builder at a time writes it), write the resolved config into ``work_dir``, then run ``stage``."""
    if not cfg.all_tasks:
        raise DassError("no tasks configured")
    rank, world = _dist()
    task_cache = TaskCache(cfg)
    check_disjoint(cfg.all_tasks, cfg.data_root)
    for task in cfg.all_tasks:  # validate every input before expensive work
        tr, te = task_cache.data(task)
        if task.teacher and not Path(task.teacher).is_file():
            raise DassError(f"task {task.key}: teacher checkpoint not found: {task.teacher}")
        if task.teacher:
            task_cache.teacher(task)
    check_trained_teachers(cfg, task_cache)
    check_no_stray_asset_writes(cfg)
    with contextlib.ExitStack() as stack:
        if rank == 0:
            ident = build_identity(cfg, task_cache.space)
            out = Path(cfg.out)
            runid.claim(out, ident)
            out.mkdir(parents=True, exist_ok=True)
            stack.enter_context(runid.locked(out, "dass.database build"))
            runid.claim(out, ident)   # again under the lock
            runid.record(out, ident)
        # the work folder's config and log only now: a refused build leaves them as they were
        setup_run_dir_of_rank(rank == 0, cfg.work_dir, cfg, "database")
        return _build_claimed(cfg, stage, task_cache, rank, world)


def _build_claimed(cfg: DatabaseConfig, stage: str, task_cache: TaskCache, rank: int, world: int) -> dict | None:
    if rank == 0:
        write_work_gitignore(cfg.work_dir)
    t0 = time.perf_counter()
    if stage in ("all", "teachers"):
        todo = [t.key for t in cfg.all_tasks if not teacher_path(cfg, t).is_file()]
        _run(cfg, "teacher", todo, "teachers", rank, world)
    if stage == "teachers":
        return None
    plan = plan_students(cfg, task_cache, missing_teachers_ok=stage == "merge")
    if stage in ("all", "students"):
        for _ in range(2):   # round 2: the seeds target_reliability adds once a task's first seeds are done
            groups = [g for g in interleave_tasks(group_jobs(plan, cfg.lockstep))
                      if not all(j.result_path(cfg.work_dir).is_file() for j in g.jobs)]
            if not groups:
                break
            _run(cfg, "group", groups, "students", rank, world)
            plan = plan_students(cfg, task_cache)
    if rank != 0 or stage not in ("all", "merge", "students"):
        return None
    manifest = merge(cfg, plan, task_cache)
    log.info("build took %.1f s; complete=%s", time.perf_counter() - t0, manifest["complete"])
    return manifest
