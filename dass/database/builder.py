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
import logging
import time
from pathlib import Path

from .. import runid
from ..cli import setup_run_dir_of_rank
from ..config import to_dict
from ..errors import DassError
from ..io import atomic_write_text
from ..space import SpaceConfig
from ..task import Task
from .config import DatabaseConfig
from .launchers import rank_and_world, run_jobs
from .merge import merge
from .plan import build_space, build_tasks, group_jobs, interleave_tasks, plan_students, teacher_path
from .runners import check_trained_teachers
from .subsets import check_disjoint

log = logging.getLogger("dass.database")


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
    return runid.identity("database", cfg, space=to_dict(space))


def build(cfg: DatabaseConfig, phase: str = "all") -> dict | None:
    """Check every input, claim and lock ``out`` (rank 0: a database holds one build identity, and
    one builder at a time writes it), write the resolved config into ``work_dir``, then run ``phase``."""
    if not cfg.all_tasks:
        raise DassError("no tasks configured")
    rank, world = rank_and_world()
    tasks = build_tasks(cfg)
    check_disjoint(cfg.all_tasks, cfg.data_root)
    for task in cfg.all_tasks:  # validate every input before expensive work
        tasks[task.key].train, tasks[task.key].test   # both splits load; refused when their class counts differ
        if task.teacher and not Path(task.teacher).is_file():
            raise DassError(f"task {task.key}: teacher checkpoint not found: {task.teacher}")
        if task.teacher:
            tasks[task.key].teacher()
    check_trained_teachers(cfg, tasks)
    check_no_stray_asset_writes(cfg)
    with contextlib.ExitStack() as stack:
        if rank == 0:
            ident = build_identity(cfg, build_space(tasks))
            out = Path(cfg.out)
            runid.claim(out, ident)
            out.mkdir(parents=True, exist_ok=True)
            stack.enter_context(runid.locked(out, "dass.database build"))
            runid.claim(out, ident)   # again under the lock
            runid.record(out, ident)
        # the work folder's config and log only now: a refused build leaves them as they were
        setup_run_dir_of_rank(rank == 0, cfg.work_dir, cfg, "database")
        return _build_claimed(cfg, phase, tasks, rank, world)


def _build_claimed(cfg: DatabaseConfig, phase: str, tasks: dict[str, Task], rank: int, world: int) -> dict | None:
    if rank == 0:
        write_work_gitignore(cfg.work_dir)
    t0 = time.perf_counter()
    if phase in ("all", "teachers"):
        todo = [t.key for t in cfg.all_tasks if not teacher_path(cfg, t).is_file()]
        run_jobs(cfg, "teacher", todo, "teachers", rank, world)
    if phase == "teachers":
        return None
    plan = plan_students(cfg, tasks, missing_teachers_ok=phase == "merge")
    if phase in ("all", "students"):
        for _ in range(2):   # round 2: the seeds target_reliability adds once a task's first seeds are done
            groups = [g for g in interleave_tasks(group_jobs(plan, cfg.lockstep))
                      if not all(j.result_path(cfg.work_dir).is_file() for j in g.jobs)]
            if not groups:
                break
            run_jobs(cfg, "group", groups, "students", rank, world)
            plan = plan_students(cfg, tasks)
    if rank != 0 or phase not in ("all", "merge", "students"):
        return None
    manifest = merge(cfg, plan, tasks)
    log.info("build took %.1f s; complete=%s", time.perf_counter() - t0, manifest["complete"])
    return manifest
