"""The database build's config (no torch: ``python -m dass.database --help`` and config errors answer
without importing it). The build itself is :mod:`dass.database.builder`."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..data.registry import dataset_key
from ..errors import DassError
from ..train.recipe import KDRecipe, TeacherRecipe
from .splits import META_SPLITS, check_meta_split
from .subsets import SubsetTaskSpec, expand


@dataclass
class TaskSpec:
    dataset: str  # dataset name (registry: glyphs/<member>, cub, folder:<path>, subset:... ...)
    split: str  # meta_train, meta_valid or meta_test
    key: str = ""        # default: dataset_key(dataset), e.g. 'glyphs/latin' -> 'glyphs-latin'
    teacher: str = ""    # teacher checkpoint; empty = trained by the build
    teacher_lr: float = 0.0  # learning rate of this task's teacher when trained here (0 = the recipe's)
    teacher_epochs: int = 0  # epochs of this task's teacher when trained here, the schedule ending there (0 = the recipe's): a weaker teacher

    def __post_init__(self):
        check_meta_split(self.split, f"task '{self.dataset}'")
        if not self.key:
            self.key = dataset_key(self.dataset)


@dataclass
class SlurmConfig:
    cluster: Literal["slurm", "local", "debug"] = "slurm"  # slurm: submit; local/debug: run the jobs here
    partition: str = ""  # Slurm partition (empty = the cluster's default)
    timeout_min: int = 120  # time limit of one array job, minutes
    array_parallelism: int = 32  # most array jobs running at once
    cpus_per_task: int = 4  # CPU cores per array job
    gpus_per_node: int = 0  # GPUs per array job
    groups_per_job: int = 4  # student groups trained one after another by one array job


@dataclass
class DatabaseConfig:
    # Keys outside a database's build identity (dass.runid): where and how the build runs, which tasks
    # and how many students and label seeds per split (a database grows by tasks, splits and seeds; each
    # task file records its students and seeds, and is re-merged when they change); the space is held
    # by content.
    IDENTITY_FREE: ClassVar[tuple[str, ...]] = (
        "out", "work_dir", "teachers_dir", "tasks", "subset_tasks", "splits", "only", "launcher", "workers",
        "threads_per_worker", "lockstep", "teacher_logit_cache", "device", "slurm", "data_root", "space",
        "students", "labelled_students", "seed", "label_seeds", "target_reliability", "max_label_seeds")

    space: str = "configs/space/cpu.yaml"  # space profile YAML
    data_root: str = "data"  # folder of the datasets
    out: str = "runs/database/cpu/db"  # output folder of the task files and manifest.json
    work_dir: str = "runs/database/cpu/work"  # resumable state: per-student results, logs, trained teachers
    teachers_dir: str = ""  # where trained teachers go: <teachers_dir>/<task>/teacher.pt (default <work_dir>/teachers)
    tasks: list[TaskSpec] = field(default_factory=list)  # the tasks: a dataset, its split and optionally a teacher
    subset_tasks: list[SubsetTaskSpec] = field(default_factory=list)  # blocks of class-subset tasks (subsets.py)
    splits: list[str] = field(default_factory=lambda: list(META_SPLITS))  # build only the tasks of these splits
    only: list[str] = field(default_factory=list)  # build only the tasks with these keys (empty = every task)
    students: dict[str, int] = field(  # students sampled per task, by split
        default_factory=lambda: {"meta_train": 20, "meta_valid": 20, "meta_test": 50})
    labelled_students: dict[str, int] = field(default_factory=dict)  # per split: label only this many of the sampled students, evenly along their MACs order (a cheaper companion of the same students)
    sample_seed: int = 0  # seed of the student sampling (combined with the task key)
    pool_factor: int = 20  # students are drawn from a pool of pool_factor x n, spread over the MACs range
    kd_recipe: KDRecipe = field(default_factory=KDRecipe)  # KD recipe that labels the students
    teacher_recipe: TeacherRecipe = field(default_factory=TeacherRecipe)  # recipe of the teachers trained by the build
    teacher_seed: int = 0  # seed of the teachers trained by the build
    seed: int = 0  # KD seed of every student of a split that label_seeds does not name
    label_seeds: dict[str, list[int]] = field(default_factory=dict)  # KD seeds per split; a label is their mean
    target_reliability: dict[str, float] = field(default_factory=dict)  # per split: add KD seeds to a task whose label is less reliable
    max_label_seeds: int = 6  # most KD seeds per task that target_reliability may grow a task to
    remap: str = "copy_paste_first"  # initialisation of a student from its teacher (copy_paste_first ...)
    scratch: bool = False  # from-scratch labels: students train from random initialisation on CE only (needs kd_recipe.alpha: 1.0; remap still makes the maps)
    noise_seed: int = 0  # seed of the noise input of the functional maps
    launcher: Literal["local", "torchrun", "slurm"] = "local"  # local (in process or workers), torchrun or slurm
    workers: int = 1  # local processes training students in parallel
    threads_per_worker: int = 0   # 0 = cores // workers
    lockstep: int = 1  # students of a task trained together with one teacher forward per batch
    teacher_logit_cache: bool = True  # teacher logits once per (task, seed): <work_dir>/teacher_logits/<task>/
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    feats_per_class: int = 10  # training images per class behind the dataset features (input D)
    max_feats: int = 512  # most images behind the dataset features
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # settings of launcher slurm

    def __post_init__(self):
        keys = [t.key for t in self.tasks]
        if len(set(keys)) != len(keys):
            raise DassError("tasks: two tasks share a key")
        if not (1 <= self.workers <= 1024 and 1 <= self.lockstep <= 1024 and 1 <= self.pool_factor <= 10_000
                and 0 <= self.threads_per_worker <= 1024 and 1 <= self.feats_per_class <= 1 << 20
                and 1 <= self.max_feats <= 1 << 20 and self.noise_seed >= 0):
            raise DassError("workers and lockstep must lie in [1, 1024], pool_factor in [1, 10000], "
                            "threads_per_worker in [0, 1024], feats_per_class and max_feats in [1, 2^20], noise_seed >= 0")
        if any(t.teacher_lr < 0 or t.teacher_epochs < 0 for t in self.tasks) or min(vars(self.slurm).get(k) for k in (
                "timeout_min", "array_parallelism", "cpus_per_task", "gpus_per_node", "groups_per_job")) < 0:
            raise DassError("tasks[].teacher_lr, tasks[].teacher_epochs and the slurm counts must be >= 0")
        for s, n in self.students.items():
            check_meta_split(s, "students")
            if not 1 <= n <= 1_000_000:
                raise DassError(f"students: '{s}: {n}' must be a count in [1, 10^6]")
        for s, k in self.labelled_students.items():
            check_meta_split(s, "labelled_students")
            if not 1 <= k <= self.students.get(s, 0):
                raise DassError(f"labelled_students: '{s}: {k}' must be a count in [1, students of "
                                f"the split ({self.students.get(s, 0)})]")
        if not self.splits:
            raise DassError(f"splits: must be a non-empty list of {list(META_SPLITS)}")
        for s in self.splits:
            check_meta_split(s, "splits")
        for s, seeds in self.label_seeds.items():
            check_meta_split(s, "label_seeds")
            if not seeds or len(set(seeds)) != len(seeds):
                raise DassError(f"label_seeds: '{s}: {seeds}' must be a list of distinct seeds")
        for s, target in self.target_reliability.items():
            check_meta_split(s, "target_reliability")
            if not 0 < target < 1:
                raise DassError(f"target_reliability: '{s}: {target}' must be a value in (0, 1)")
            if len(self.seeds(s)) < 2:
                raise DassError(f"target_reliability: split {s} needs label_seeds with at least 2 seeds "
                                f"(their agreement decides how many more are needed)")
        if self.scratch and (self.kd_recipe.alpha != 1.0 or self.remap == "random_init"):
            raise DassError("scratch: true trains on the labels alone: set kd_recipe.alpha: 1.0 (and keep remap a "
                            "teacher remap: it makes the functional maps)")
        if not 2 <= self.max_label_seeds <= 100:
            raise DassError(f"max_label_seeds must lie in [2, 100], got {self.max_label_seeds}")

    def labelled(self, split: str) -> int:
        """How many students of a task of ``split`` are labelled (``labelled_students``, else all sampled)."""
        return self.labelled_students.get(split, self.students.get(split, 0))

    @property
    def train_remap(self) -> str:
        """The initialisation of the students' training: ``random_init`` with ``scratch``, else ``remap``."""
        return "random_init" if self.scratch else self.remap

    @functools.cached_property
    def all_tasks(self) -> list[TaskSpec]:
        """``tasks`` followed by the tasks that ``subset_tasks`` expands into (reads ``data_root``),
        those of ``splits`` only (and of ``only``, when it names keys)."""
        out = [t for t in self.tasks if t.split in self.splits]
        for block in self.subset_tasks:
            if block.split in self.splits:
                out += [TaskSpec(**t) for t in expand(block, self.data_root)]
        keys = [t.key for t in out]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise DassError(f"tasks: two tasks share the key '{sorted(dup)[0]}'")
        unknown = [k for k in self.only if k not in keys]
        if unknown:
            raise DassError(f"only: no task '{unknown[0]}' in the splits {self.splits} "
                            f"(keys: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''})")
        return [t for t in out if t.key in self.only] if self.only else out

    def task(self, key: str) -> TaskSpec:
        return next(t for t in self.all_tasks if t.key == key)

    def seeds(self, split: str) -> list[int]:
        """The KD seeds of the students of ``split`` (``label_seeds[split]``, else ``[seed]``)."""
        return list(self.label_seeds.get(split) or [self.seed])
