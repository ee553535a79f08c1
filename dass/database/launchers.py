"""The database build's launchers: ``local`` (in process, or ``workers`` spawned processes),
``torchrun`` (ranks share the job list by index and meet at a barrier after each phase) and ``slurm``
(submitit job arrays); each worker process loads the tasks once (:func:`_worker_init`)."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from pathlib import Path

import torch.distributed as dist
from tqdm import tqdm

from ..config import from_dict, to_dict
from ..errors import DassError
from .config import DatabaseConfig
from .jobs import JobGroup
from .plan import build_tasks
from .runners import set_threads, run_group, run_teacher_job

log = logging.getLogger("dass.database")


def _worker_init(cfg_dict):
    global _WORKER_STATE
    cfg = from_dict(DatabaseConfig, cfg_dict)
    set_threads(cfg)
    _WORKER_STATE = (cfg, build_tasks(cfg))


_WORKER_STATE = None


def _worker_teacher(task_key: str):
    cfg, tasks = _WORKER_STATE
    return run_teacher_job(cfg, cfg.task(task_key), tasks)


def _worker_group(group: JobGroup):
    cfg, tasks = _WORKER_STATE
    return run_group(cfg, group, tasks)


def _submitit_teacher(cfg_dict, task_key):
    _worker_init(cfg_dict)
    return _worker_teacher(task_key)


def _submitit_groups(cfg_dict, groups):
    _worker_init(cfg_dict)
    return sum(_worker_group(g) for g in groups)


def rank_and_world():
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


def run_jobs(cfg: DatabaseConfig, kind: str, items: list, desc: str, rank: int, world: int) -> None:
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
