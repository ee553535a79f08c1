"""Scorers: every way of ranking the students of a database task, behind one interface.

A scorer has a ``name`` and ``score(task, context) -> np.ndarray`` (float64, one score per student of
``task``, in the file's order, higher = better); ``task`` is a saved database task
(:class:`dass.database.saved.SavedTask`) and ``context`` an :class:`EvalContext`. Built-ins are registered by name
(:func:`make_scorer`):

* ``random``: uniform scores from ``(context.seed, crc32(task key))``;
* ``macs``, ``params``: the exact costs (:mod:`dass.space.cost`);
* ``grad_norm``, ``snip``, ``synflow``, ``naswot``, ``jacov``, ``inherit``: zero-cost proxies
  (:mod:`dass.proxies.zero_cost`) of the *remapped* student: built and initialised from the task's
  teacher with the task's ``remap`` strategy, on :meth:`EvalContext.proxy_batch` (``inherit``, the
  accuracy the student inherits, on a batch of its own, 1,024 images: ``dass.proxies.PROXY_IMAGES``;
  NaN, not computed, where the task's images are unreadable and the batch is noise);
* ``diswot``: the relation term of DisWOT, the remapped untrained student's per-stage sample
  relations against the trained teacher's on the same batch (:func:`dass.proxies.zero_cost.diswot`);
* ``proxy_ensemble``: a ridge regression or gradient-boosted trees over log MACs, log params, the
  zero-cost proxies, the stage and the one-hot encoding, trained on the database's ``meta_train``
  tasks (``context.db``), its feature set and model chosen on ``meta_valid``
  (:mod:`dass.evaluation.ensemble`);
* ``encoding_ridge``: the task-blind floor, a ridge regression over log MACs, log params and the
  one-hot encoding fitted on the ``meta_train`` students, its penalty chosen on ``meta_valid``
  (:class:`EncodingRidgeScorer`);
* ``oracle``: the true accuracy (``context.label``), an upper bound.

:class:`PredictorScorer` wraps a meta-trained predictor checkpoint (DaSS ``STA``/``DSTA``, or the
KD-unaware ``A``/``DA`` meta-predictor): adapted on the task's teacher, it scores the database's
students from their stored maps and encodings.

Proxy batch (:meth:`EvalContext.proxy_batch`): with ``proxy_input="data"``, ``proxy_batch_size``
train images of the task's dataset drawn without replacement with ``seed`` (resized to the space's
input and normalised with mean 0.5 / std 0.5, no augmentation) and their labels; when the dataset
cannot be read under ``data_root`` (or with ``proxy_input="noise"``), ``noise_input(space,
noise_seed, n)`` (the task's fixed noise, ``n`` images) with labels ``i mod num_classes``. Which one
each task used is kept in ``context.proxy_source``. With ``proxy_cache`` a folder, computed proxy
scores are stored there and reused by any run on the same students, teacher and batch
(:mod:`dass.proxies.cache`).
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..database.saved import SavedTask, load_saved_tasks
from ..database.splits import LABELS
from ..errors import DassError
from ..predictor import proxy_inputs
from ..predictor.adapt import predict_task
from ..predictor.data import TaskData
from ..predictor.checkpoint import check_same_space, load_predictor
from ..proxies.batch import ARCH_PROXIES, image_batch, proxy_images
from ..hashing import proxy_state_sha256
from ..proxies.batch import ProxySetting
from ..proxies.cache import MissingProxy, ProxyCache, cached_archs_proxy
from ..space import macs, noise_input, params
from ..task import Task
from . import ensemble

log = logging.getLogger("dass.evaluation")

PROXY_BATCHES = ("data", "noise")


# proxies that score a student by its accuracy on the batch's labels: NaN on the noise input
LABEL_PROXIES = ("inherit",)


# ---------------------------------------------------------------------------------------- context

@dataclass
class EvalContext:
    """What scorers share: where data and teachers are, the device, seeds, and per-task caches."""

    data_root: str = "data"
    device: torch.device = torch.device("cpu")
    seed: int = 0
    label: str = "best_acc"
    proxy_input: str = "data"
    proxy_batch_size: int = 64
    teachers: dict[str, str] = field(default_factory=dict)   # task key -> checkpoint (overrides the file's)
    proxy_source: dict[str, str] = field(default_factory=dict)
    progress: bool = True
    db: str = ""            # the database (the proxy ensemble trains on its meta_train/meta_valid tasks)
    proxy_cache: str = ""   # folder of computed proxy scores (dass.proxies.cache); "" = none
    proxy_read_only_caches: tuple = ()   # folders of computed proxy scores only read (the shipped ones)
    _tasks: dict = field(default_factory=dict, repr=False)     # task key -> dass.task.Task
    _batch: dict = field(default_factory=dict, repr=False)
    _warned: set = field(default_factory=set, repr=False)
    _noise: set = field(default_factory=set, repr=False)   # tasks whose proxy batch is noise
    _proxy: dict = field(default_factory=dict, repr=False)
    _teacher_digest: dict = field(default_factory=dict, repr=False)
    _cache: ProxyCache | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.proxy_cache or self.proxy_read_only_caches:
            self._cache = ProxyCache(self.proxy_cache, read_only=self.proxy_read_only_caches)
        if self.proxy_input not in PROXY_BATCHES:
            raise DassError(f"proxy_input must be one of {list(PROXY_BATCHES)}, got {self.proxy_input!r}")
        if self.proxy_batch_size < 2:
            raise DassError("proxy_batch_size must be >= 2 (naswot and jacov compare images)")
        if self.label not in LABELS:
            raise DassError(f"label must be one of {list(LABELS)}, got {self.label!r}")

    def proxy_scores_cache(self) -> ProxyCache | None:
        """The proxy cache (written folder and read-only ones), or None."""
        return self._cache

    def teacher_path(self, task: SavedTask) -> Path:
        return Path(self.teachers.get(task.key) or task.teacher_ckpt)

    def task_of(self, task: SavedTask) -> Task:
        """The :class:`~dass.task.Task` of a saved task (:meth:`~dass.task.Task.from_saved`, its teacher
        the one :meth:`teacher_path` names), one per task key: its teacher is loaded once."""
        if task.key not in self._tasks:
            self._tasks[task.key] = Task.from_saved(task, self.data_root, self.teacher_path(task), self.device)
        return self._tasks[task.key]

    def teacher_state(self, task: SavedTask) -> dict:
        """The task's teacher state dict (loaded once; checked against the task's space and classes)."""
        path = self.teacher_path(task)
        if not str(path) or not path.is_file():
            raise DassError(f"task {task.key}: teacher checkpoint not found: '{path}' "
                            f"(give it with teachers.{task.key}=<path>)")
        return self.task_of(task).teacher_sd

    def recorded_digest(self, task: SavedTask) -> str:
        """The teacher's proxy digest the task file records (``teacher.proxy_digest``) when its teacher
        checkpoint is not at hand and a proxy cache is configured, else "": such a task's proxies are
        read from the cache by that digest, never computed."""
        path = self.teacher_path(task)
        if self._cache is None or (str(path) and path.is_file()):
            return ""
        return task.teacher_digest

    def check_proxy_teacher(self, task: SavedTask) -> None:
        """Before any work: the teacher a task's proxies need is loadable, or the task records its
        digest for the proxy cache (a cache miss is then an error when the proxy is read)."""
        if not self.recorded_digest(task):
            self.teacher_state(task)

    def proxy_scores(self, task: SavedTask, name: str) -> np.ndarray:
        """Proxy ``name`` (one of :data:`dass.proxies.ARCH_PROXIES`) of every remapped student of
        ``task`` on the task's proxy batch; computed once per (task, proxy) and shared by scorers.
        Without the teacher checkpoint, read from the cache by the digest the task file records."""
        key = (task.key, name)
        if key not in self._proxy:
            space, n_cls = task.space, task.num_classes
            recorded = self.recorded_digest(task)
            sd = None if recorded else self.teacher_state(task)
            x, y = self.proxy_batch(task, proxy_images(name, self.proxy_batch_size))
            if name in LABEL_PROXIES and task.key in self._noise:
                # an accuracy on noise images with made-up labels measures nothing: not computed
                self._proxy[key] = np.full(len(task), np.nan)
                return self._proxy[key]
            if self._cache is not None and not recorded and task.key not in self._teacher_digest:
                self._teacher_digest[task.key] = proxy_state_sha256(sd)
            digest = recorded or self._teacher_digest.get(task.key)
            setting = ProxySetting(space, n_cls, sd, task.remap, self.device, teacher_digest=digest)
            try:
                self._proxy[key] = cached_archs_proxy(self._cache, f"{task.key}.{name}", name, task.archs,
                                                      setting, (x, y), self.progress, f"{name} {task.key}")
            except MissingProxy:
                raise DassError(f"task {task.key}: proxy {name} is not in the proxy cache {self._cache.describe()} "
                                f"and computing it needs the teacher checkpoint, not found: "
                                f"'{self.teacher_path(task)}' (give it with teachers.{task.key}=<path>)") from None
        return self._proxy[key]

    def proxy_batch(self, task: SavedTask, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x: n x C x S x S float32, y: n int64)`` on the device (see module doc); ``n`` defaults to
        the configured proxy batch size (a proxy that needs more images asks for more)."""
        n = int(n or self.proxy_batch_size)
        key = (task.key, n)
        if key not in self._batch:
            self._batch[key] = self._make_batch(task, n)
        return self._batch[key]

    def _make_batch(self, task: SavedTask, n: int):
        key, space, n_cls, dataset = task.key, task.space, task.num_classes, task.dataset
        if self.proxy_input == "data":
            try:
                return self._data_batch(task, space, dataset, n_cls, n)
            except DassError as e:
                if key not in self._warned:   # once per task, not once per batch size
                    self._warned.add(key)
                    log.warning("task %s: proxies fall back to the noise input (dataset not readable: %s)", key, e)
        self._noise.add(key)
        x = noise_input(space, task.noise_seed, n=n)
        y = torch.arange(n) % n_cls
        if n == self.proxy_batch_size:
            self.proxy_source[key] = f"noise (seed {task.noise_seed}, {n} images)"
        return x.to(self.device), y.to(self.device)

    def _data_batch(self, task, space, dataset, n_cls, n):
        x, y = image_batch(dataset, self.data_root, space, n_cls, n,
                           [self.seed, zlib.crc32(task.key.encode())], self.device)
        if n == self.proxy_batch_size:
            self.proxy_source[task.key] = f"train images of {dataset} ({len(y)} images)"
        return x, y


# ---------------------------------------------------------------------------------------- scorers

class Scorer:
    """Base class: ``score(task, context)`` returns one float64 per student, higher = better."""

    name = ""
    needs_teacher = False   # reads the teacher checkpoint (checked before any work)

    def score(self, task: SavedTask, context: EvalContext) -> np.ndarray:
        raise NotImplementedError


class RandomScorer(Scorer):
    name = "random"

    def score(self, task, context):
        rng = np.random.default_rng([context.seed, zlib.crc32(task.key.encode())])
        return rng.random(len(task))


class CostScorer(Scorer):
    def __init__(self, kind: str):
        self.name = kind
        self._fn = {"macs": macs, "params": params}[kind]

    def score(self, task, context):
        return np.array([self._fn(a, task.space, task.num_classes) for a in task.archs], dtype=np.float64)


class ProxyScorer(Scorer):
    """A zero-cost proxy of each remapped student on the task's proxy batch."""

    needs_teacher = True

    def __init__(self, proxy: str):
        self.name = proxy

    def score(self, task, context):
        return context.proxy_scores(task, self.name)


class FittedScorer(Scorer):
    """A scorer fitted on the database's ``meta_train`` tasks (``context.db``), its model chosen on
    ``meta_valid`` by :func:`dass.evaluation.ensemble.fit_on_tasks` among ``candidates`` (feature
    groups) x ``models``; fitted on the first task it scores."""

    needs_training_tasks = True
    candidates: tuple = ensemble.CANDIDATE_GROUPS
    models: tuple = ensemble.MODELS

    def __init__(self):
        self.model = None

    def fit(self, context: EvalContext) -> None:
        if not context.db:
            raise DassError(f"{self.name} needs the database (db=...) to train on its meta_train tasks")
        groups = load_saved_tasks(context.db, splits=("meta_train", "meta_valid"))
        self.model = ensemble.fit_on_tasks(groups["meta_train"], groups["meta_valid"], context,
                                           candidates=self.candidates, models=self.models)
        log.info("%s: %s", self.name, self.model.describe())

    def score(self, task, context):
        if self.model is None:
            self.fit(context)
        return self.model.predict_task(task, context)


class EnsembleScorer(FittedScorer):
    """``proxy_ensemble``: ridge regression or boosted trees over cost, zero-cost proxies and the
    architecture encodings, trained on the database's meta_train tasks, features and model chosen on
    meta_valid (:mod:`dass.evaluation.ensemble`)."""

    name = "proxy_ensemble"
    needs_teacher = True


class EncodingRidgeScorer(FittedScorer):
    """``encoding_ridge``: the task-blind floor, a ridge regression over log MACs, log params and the
    one-hot encoding (:data:`dass.evaluation.ensemble.ENCODING_GROUPS`) fitted once on the
    database's meta_train students (labels z-scored per task), its penalty chosen on meta_valid among
    :data:`dass.evaluation.ensemble.ENCODING_ALPHAS`. It never sees the scored task's teacher,
    images or labels: every task gets the same order of the same students."""

    name = "encoding_ridge"
    candidates = (ensemble.ENCODING_GROUPS,)
    models = ensemble.ENCODING_MODELS


class OracleScorer(Scorer):
    name = "oracle"

    def score(self, task, context):
        return task.accuracy(context.label)


class PredictorScorer(Scorer):
    """A meta-trained predictor (``dass-predictor-v1`` checkpoint) adapted on each task's teacher."""

    def __init__(self, name: str, path, device="cpu"):
        self.name = name
        self.path = Path(path)
        self.predictor = load_predictor(self.path, device=device)

    @property
    def input_type(self) -> str:
        return self.predictor.input_type

    @property
    def needs_teacher(self) -> bool:
        return bool(self.predictor.model.cfg.proxies)

    def check_task(self, task: SavedTask) -> None:
        """Raise DassError when the predictor cannot read ``task`` (other space, missing inputs)."""
        check_same_space(self.predictor.space, task.space, f"{self.path} on task {task.key}")
        if "D" in self.input_type and task.dataset_feats is None:
            raise DassError(f"{self.path}: input type {self.input_type} reads dataset features, "
                            f"task {task.key} has none")
        trained = self.predictor.inputs.get("remap")
        if trained and trained != task.remap:
            log.warning("%s: meta-trained on maps remapped with %s, task %s uses %s", self.name, trained,
                        task.key, task.remap)

    def score(self, task, context):
        p = self.predictor
        data = TaskData.from_saved(task, context.label)
        if p.model.cfg.proxies:
            info = p.inputs["proxies"]
            data.teacher_ckpt = str(context.teacher_path(task))
            proxy_inputs.attach([data], info["names"], context.data_root, int(info["batch_size"]), int(info["seed"]),
                                cache=context.proxy_scores_cache(), device=context.device)
        dev = next(p.model.parameters()).device
        pred = predict_task(p.model, p.inner_lrs, p.target, int(p.adapt["steps"]), data, dev)
        return pred.double().numpy()


_REGISTRY: dict[str, Callable[[], Scorer]] = {
    "random": RandomScorer,
    "macs": lambda: CostScorer("macs"),
    "params": lambda: CostScorer("params"),
    **{p: (lambda p=p: ProxyScorer(p)) for p in ARCH_PROXIES},  # the zero-cost proxies, then diswot
    "encoding_ridge": EncodingRidgeScorer,
    "proxy_ensemble": EnsembleScorer,
    "oracle": OracleScorer,
}


def builtin_scorers() -> list[str]:
    return list(_REGISTRY)


def make_scorer(name: str) -> Scorer:
    """A built-in scorer by name (DassError naming the known ones otherwise)."""
    if name not in _REGISTRY:
        raise DassError(f"unknown method '{name}' (built-in: {', '.join(_REGISTRY)}; predictors are "
                        f"given as predictors.<name>=<checkpoint>)")
    return _REGISTRY[name]()


def run_scorer(scorer: Scorer, task: SavedTask, context: EvalContext) -> np.ndarray:
    """``scorer.score`` checked to give one float per student."""
    s = np.asarray(scorer.score(task, context), dtype=np.float64).reshape(-1)
    if s.shape != (len(task),):
        raise RuntimeError(f"scorer {scorer.name} gave {s.size} scores for {len(task)} students")
    return s
