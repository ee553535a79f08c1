"""Tasks of the database as predictor inputs, and the targets the predictor learns.

A :class:`TaskData` holds one ``dass-db`` task file (a :class:`~dass.database.saved.SavedTask`) as
the predictor reads it, its students labelled with one accuracy label. :func:`student_inputs` builds
the per-row predictor inputs of any list of architectures (database students, the teacher as support
set, search candidates) so training and search feed the predictor the same way; :func:`task_context` adds the per-task inputs (teacher map, dataset rows).

Targets (``kind``), all from accuracies in percent:

* ``raw``: ``acc / 100`` (the paper); the support label is ``teacher_acc / 100``;
* ``relative``: ``acc / teacher_acc``; the support label is 1;
* ``standardized``: ``(acc - mean) / std`` over the task's students; the support label is the
  teacher's mean z-score over the meta-training tasks (``support_default``), since a new task's
  student statistics are unknown at search time. Predictions are scores; meta-training adds a
  linear calibration to accuracy (:func:`to_accuracy`) so every kind predicts percent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import config as cfgmod
from ..database.saved import SavedTask, load_saved_tasks
from ..errors import DassError
from ..space import Arch, SpaceConfig, graph_batch, macs, macs_params, onehot_batch, params, stage_batch, teacher_arch
from ..task import SupportPoint

TARGETS = ("raw", "relative", "standardized")


# ----------------------------------------------------------------------------------------------
# Inputs


def cost_features(archs: list[Arch], space: SpaceConfig, num_classes: int) -> torch.Tensor:
    """``N x 2``: ``log(macs / teacher macs)``, ``log(params / teacher params)``."""
    t = teacher_arch(space)
    tm, tp = macs(t, space, num_classes), params(t, space, num_classes)
    rows = [(math.log(m / tm), math.log(p / tp)) for m, p in (macs_params(a, space, num_classes) for a in archs)]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(archs), 2)


def student_inputs(archs: list[Arch], space: SpaceConfig, num_classes: int, needs: set[str],
                   maps: torch.Tensor | None = None, onehot: torch.Tensor | None = None,
                   proxy: torch.Tensor | None = None) -> dict:
    """Per-row inputs (``smap``, ``onehot``, ``graph``, ``cost``, ``proxy``) of ``archs``, as far as
    ``needs`` asks.

    ``maps``: ``N x C x r x r`` functional maps (required when ``smap`` is needed); ``onehot``:
    precomputed encodings (computed from ``archs`` otherwise); ``proxy``: ``N x P`` proxy features
    (:mod:`dass.predictor.proxy_inputs`, required when ``proxy`` is needed).
    """
    out: dict = {}
    if "proxy" in needs:
        if proxy is None:
            raise DassError("the predictor reads zero-cost proxy features but none were given")
        out["proxy"] = proxy
    if "smap" in needs:
        if maps is None:
            raise DassError("the predictor reads student maps (S) but none were given")
        out["smap"] = maps
    if "onehot" in needs:
        out["onehot"] = onehot if onehot is not None else onehot_batch(archs, space)
    if "graph" in needs:
        out["graph"] = graph_batch(archs, space)
    if "cost" in needs:
        out["cost"] = cost_features(archs, space, num_classes)
    if "stage" in needs:
        out["stage"] = stage_batch(archs, space)
    if "stage_mean" in needs:       # the stage encoding with mean block widths (model.stage_need("mean"))
        out["stage"] = stage_batch(archs, space, "mean")
    return out


def task_stats(teacher_acc: float | None, num_classes: int) -> torch.Tensor:
    """The task statistics of :data:`~dass.predictor.config.TASK_STATS`: the teacher's accuracy as a
    fraction (``teacher_acc`` in percent; NaN when unknown) and ``log(num_classes)``."""
    acc = float("nan") if teacher_acc is None else float(teacher_acc) / 100.0
    return torch.tensor([acc, math.log(num_classes)], dtype=torch.float32)


def task_context(needs: set[str], tmap: torch.Tensor | None, dset: torch.Tensor | None,
                 stats: torch.Tensor | None = None) -> dict:
    """Per-task inputs: ``tmap`` (``C x r x r``), ``dset`` (``M x C``) and ``task`` (``stats``,
    :func:`task_stats`) where needed."""
    out: dict = {}
    if "task" in needs:
        if stats is None or not bool(torch.isfinite(stats).all()):
            raise DassError("the predictor reads the task's statistics (task_stats: the teacher's accuracy, the "
                            "class count) but they are unknown: give the teacher's accuracy")
        out["task"] = stats
    if "tmap" in needs:
        out["tmap"] = tmap
    if "dset" in needs:
        if dset is None:
            raise DassError("the predictor reads dataset features (D) but the task has none")
        out["dset"] = dset
    return out


def support_inputs(point: SupportPoint, space: SpaceConfig, num_classes: int, needs: set[str],
                   dset: torch.Tensor | None, num_proxies: int | None = None,
                   onehot: torch.Tensor | None = None) -> dict:
    """The support set of a task as a one-row input: the teacher (``point``, :meth:`dass.task.Task.support_point`)
    whose own map is both its S and its T input, with ``num_proxies`` zero proxy features (the
    teacher's own, relative to itself; None: no proxy input) and its ``onehot`` when stored. Used by
    meta-training (:meth:`TaskData.support`) and search (:class:`dass.search.searcher.AdaptedScorer`)."""
    zero = None if num_proxies is None else torch.zeros(1, num_proxies)
    rows = student_inputs([point.arch], space, num_classes, needs, point.fmap[None],
                          None if onehot is None else onehot[None], zero)
    return {**rows, **task_context(needs, point.fmap, dset, task_stats(point.accuracy, num_classes))}


PER_TASK = ("tmap", "dset", "task")   # inputs of the task, not of a row


def take(inputs: dict, idx=None, device=None) -> dict:
    """Rows ``idx`` (all when None) of the per-row inputs, float32 on ``device``; per-task kept whole."""
    def pick(v):
        v = v if idx is None else v[idx]
        return v.to(device=device, dtype=torch.float32)
    out = {}
    for k, v in inputs.items():
        if k in PER_TASK:
            out[k] = v.to(device=device, dtype=torch.float32)
        elif k == "graph":
            out[k] = {gk: pick(gv) for gk, gv in v.items()}
        else:
            out[k] = pick(v)
    return out


# ----------------------------------------------------------------------------------------------
# Targets


def student_targets(kind: str, acc: torch.Tensor, teacher_acc: float) -> torch.Tensor:
    if kind == "raw":
        return acc / 100.0
    if kind == "relative":
        return acc / max(float(teacher_acc), 1e-6)
    if kind == "standardized":
        std = float(acc.std()) if acc.numel() > 1 else 0.0
        return (acc - acc.mean()) / (std if std > 0 else 1.0)
    raise DassError(f"unknown target {kind!r} (known: {', '.join(TARGETS)})")


def support_target(target: dict, teacher_acc: float) -> float:
    kind = target["kind"]
    if kind == "raw":
        return float(teacher_acc) / 100.0
    if kind == "relative":
        return 1.0
    return float(target["support_default"])


def gives_accuracy(target: dict) -> bool:
    """Whether :func:`to_accuracy` turns this predictor's output into percent."""
    return "calib" in target or target["kind"] != "standardized"


def fit_calibration(preds: list[torch.Tensor], accs: list[torch.Tensor], teacher_accs: list[float],
                    teacher_terms: bool = False) -> list[float]:
    """The least-squares fit of ``acc / teacher_acc`` pooled over tasks: ``[a, b]`` of ``a + b * pred``,
    or with ``teacher_terms`` ``[a, b, c, d]`` of ``a + b * pred + c * t + d * t * pred``, ``t`` the
    teacher's accuracy as a fraction (under a weak teacher students reach a larger share of its
    accuracy, and their spread differs)."""
    p = torch.cat([x.double().reshape(-1) for x in preds])
    y = torch.cat([a.double().reshape(-1) / max(float(t), 1e-6) for a, t in zip(accs, teacher_accs)])
    if not bool(torch.isfinite(p).all()):
        raise DassError("the predictor's outputs are not finite (meta-training diverged: lower outer_lr or "
                        "inner_lr_init)")
    cols = [torch.ones_like(p), p]
    if teacher_terms:
        t = torch.cat([torch.full((x.numel(),), float(a) / 100.0, dtype=torch.float64) for x, a in zip(preds, teacher_accs)])
        cols += [t, t * p]
    coef = torch.linalg.lstsq(torch.stack(cols, dim=1), y[:, None], driver="gelsd").solution[:, 0]
    return [float(c) for c in coef]


def to_accuracy(target: dict, pred: torch.Tensor, teacher_acc: float) -> torch.Tensor | None:
    """Predicted accuracy in percent, or None for an uncalibrated score-only target (``standardized``).

    A predictor whose ``target`` holds ``calib`` (fitted after meta-training on the meta-training
    students, :func:`fit_calibration`) predicts ``teacher_acc * (a + b * pred)``, or with four
    coefficients ``teacher_acc * (a + b * pred + c * t + d * t * pred)`` (``t = teacher_acc / 100``),
    whatever its target kind: the output is mapped to accuracy relative to the teacher's, which the
    support set gives for the new task. Accuracies are clipped to [0, 100] (a linear map can leave
    them; the ranking is the score's, not this).
    """
    if "calib" in target:
        c = [float(v) for v in target["calib"]]
        if len(c) not in (2, 4):
            raise DassError(f"the predictor's calibration has {len(c)} coefficients; 2 or 4 expected")
        rel = c[0] + c[1] * pred
        if len(c) == 4:
            t = float(teacher_acc) / 100.0
            rel = rel + c[2] * t + c[3] * t * pred
        acc = rel * float(teacher_acc)
    elif target["kind"] == "raw":
        acc = pred * 100.0
    elif target["kind"] == "relative":
        acc = pred * float(teacher_acc)
    else:
        return None
    return acc.clamp(0.0, 100.0)


def make_target(kind: str, label: str, train_tasks: list["TaskData"]) -> dict:
    """The target description stored with a predictor (``support_default`` from the training tasks)."""
    if kind not in TARGETS:
        raise DassError(f"unknown target {kind!r} (known: {', '.join(TARGETS)})")
    default = 0.0
    if kind == "standardized":
        zs = []
        for t in train_tasks:
            std = float(t.acc.std())
            zs.append((t.teacher_acc - float(t.acc.mean())) / (std if std > 0 else 1.0))
        default = float(np.mean(zs))
    return {"kind": kind, "label": label, "support_default": default}


# ----------------------------------------------------------------------------------------------
# Tasks


@dataclass
class TaskData:
    """One database task. Accuracies in percent; maps float16 as stored."""
    key: str
    split: str
    dataset: str
    num_classes: int
    space: SpaceConfig
    archs: list[Arch]
    acc: torch.Tensor                 # N, the chosen label (best_acc or final_acc)
    fmap: torch.Tensor                # N x C x r x r
    onehot: torch.Tensor              # N x D
    teacher_arch: Arch
    teacher_acc: float                # the teacher's best_acc (the support label)
    teacher_fmap: torch.Tensor        # C x r x r
    teacher_onehot: torch.Tensor      # D
    dset: torch.Tensor | None         # M x C
    noise_seed: int
    remap: str
    teacher_ckpt: str = ""
    teacher_digest: str = ""          # the teacher's proxy digest (teacher.proxy_digest), "" when not recorded
    proxy: torch.Tensor | None = None   # N x P proxy features, set by dass.predictor.proxy_inputs.attach
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_saved(cls, saved: SavedTask, label: str = "best_acc") -> "TaskData":
        """The predictor's view of a saved task, its students labelled with ``label``."""
        feats = saved.dataset_feats
        return cls(key=saved.key, split=saved.split, dataset=saved.dataset, num_classes=saved.num_classes,
                   space=saved.space, archs=saved.archs, acc=saved.label(label).float(), fmap=saved.fmap,
                   onehot=saved.onehot.float(), teacher_arch=saved.teacher_arch, teacher_acc=saved.teacher_acc,
                   teacher_fmap=saved.teacher_fmap, teacher_onehot=saved.teacher_onehot.float(),
                   dset=None if feats is None else feats.float(), noise_seed=saved.noise_seed, remap=saved.remap,
                   teacher_ckpt=saved.teacher_ckpt, teacher_digest=saved.teacher_digest)

    @classmethod
    def from_db(cls, d: dict, label: str = "best_acc") -> "TaskData":
        """:meth:`from_saved` of a task dict (:func:`dass.database.format.load_task_db`)."""
        return cls.from_saved(SavedTask.from_db(d), label)

    def __len__(self) -> int:
        return len(self.archs)

    def inputs(self, needs: set[str]) -> dict:
        """All students' inputs (cached; maps stay float16 until :func:`take`)."""
        key = ("students", frozenset(needs))
        if key not in self._cache:
            rows = student_inputs(self.archs, self.space, self.num_classes, needs, self.fmap, self.onehot,
                                  self.proxy)
            self._cache[key] = {**rows, **task_context(needs, self.teacher_fmap, self.dset,
                                                       task_stats(self.teacher_acc, self.num_classes))}
        return self._cache[key]

    def support(self, needs: set[str]) -> dict:
        """The teacher as a one-row input (its own map is both S and T; its proxy features are 0)."""
        key = ("support", frozenset(needs))
        if key not in self._cache:
            self._cache[key] = support_inputs(self.support_point, self.space, self.num_classes, needs, self.dset,
                                              None if self.proxy is None else self.proxy.shape[1],
                                              self.teacher_onehot)
        return self._cache[key]

    @property
    def support_point(self) -> SupportPoint:
        return SupportPoint(self.teacher_arch, self.teacher_fmap, self.teacher_acc)


def load_tasks(db_root, label: str = "best_acc") -> tuple[SpaceConfig, dict[str, list[TaskData]]]:
    """Every task of the database as :class:`TaskData`, grouped by split; all must share one space."""
    groups = load_saved_tasks(db_root)
    out: dict[str, list[TaskData]] = {}
    space = None
    for split, saved in groups.items():
        out[split] = [TaskData.from_saved(t, label) for t in saved]
        for t in out[split]:
            if space is None:
                space = t.space
            elif cfgmod.to_dict(t.space) != cfgmod.to_dict(space):
                raise DassError(f"{db_root}: task {t.key} uses space '{t.space.name}', others '{space.name}'")
    return space, out


def sample_query(n: int, n_query: int, rng: np.random.Generator) -> torch.Tensor:
    """``min(n_query, n)`` distinct student indices."""
    return torch.from_numpy(rng.choice(n, size=min(n_query, n), replace=False))
