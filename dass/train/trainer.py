"""The one training loop of the project, used by teachers and by KD students.

* :class:`Learner` is one network being trained: model, SGD (Nesterov), per-step cosine schedule to
  0, AMP scaler, accumulated epoch metrics, history and checkpoints.
* :func:`fit` runs any number of learners in lockstep over the same augmented batches; when a
  teacher is given it is run once per batch and its logits are shared. One learner = an ordinary run.
* :func:`fit_teacher` is the in-process API of teachers (no files unless ``run_dir``); KD students
  go through :mod:`dass.train.lockstep` (``kd_train``, ``kd_train_many``), which builds on this loop.

Devices: "auto" = CUDA when available. On CUDA the step runs under autocast (bf16 when supported,
else fp16 with a GradScaler), channels_last, cudnn.benchmark. Metrics are accumulated on the
device and read once per epoch (no per-step sync). A non-finite epoch loss stops the run with a
DassError; the checkpoint of the last good epoch stays on disk.

Checkpoints (``run_dir``, written by rank 0 at the end of every epoch, atomically)::

    last.pt  {format, identity, epoch (epochs done), model, optimizer, scheduler, scaler,
              history, best_acc, best_epoch, rng: {cpu, cuda: [...]}}
    best.pt  {format, identity, epoch, test_acc, state_dict}   (the best test accuracy so far)

Only tensors and primitives are stored (loaded with weights_only=True). A run whose ``last.pt``
exists resumes from it; ``identity`` (kind, arch, recipe, seed, ...) must match, else DassError.
The data order depends only on (seed, epoch), so a resumed run reproduces the uninterrupted one.

History: one record per epoch ``{epoch (1-based), train_loss, train_acc, test_acc (percent, None
when not validated), lr (after the epoch), seconds}``; in lockstep, ``seconds`` is the epoch's
wall time divided by the number of learners. Accuracies are top-1 in percent.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from .. import config as cfgmod
from ..data.arrays import ImageArrays, check_splits
from ..data.loader import DeviceLoader, LoaderConfig
from ..errors import DassError
from ..io import atomic_torch_save, safe_torch_load
from ..space import Arch, SpaceConfig, build, macs, params, remap, teacher_arch
from .distributed import (DistContext, all_reduce_sum, broadcast_buffers, per_process_batch,
                          single_process, wrap)
from .kd_setting import KDSetting
from .losses import kd_loss, smoothed_cross_entropy
from .recipe import KDRecipe, Recipe, TeacherRecipe

CKPT_FORMAT = "dass-train-v1"
LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


# ------------------------------------------------------------------------------ precision

@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None = float32 throughout) and memory format of a device."""

    dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=self.dtype, enabled=self.dtype is not None)

    @property
    def memory_format(self):
        return torch.channels_last if self.channels_last else torch.preserve_format


def precision_for(device: torch.device) -> Precision:
    """CUDA: bf16 autocast when supported (else fp16), channels_last, cudnn.benchmark. CPU: float32."""
    if device.type != "cuda":
        return Precision()
    torch.backends.cudnn.benchmark = True
    return Precision(torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16, True)


def cosine_factor(total_steps: int) -> Callable[[int], float]:
    """Per-step cosine from 1 to 0 over ``total_steps`` steps."""
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def make_sgd(params, recipe: Recipe) -> torch.optim.SGD:
    """The recipe's SGD with the multi-tensor (``foreach``) update: the same elementwise operations
    as the per-parameter loop, so bitwise the same weights (tested), in fewer kernel calls. (The
    ``fused`` CPU kernel is faster still but rounds differently: not used.)"""
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                           weight_decay=recipe.weight_decay, foreach=True)


# ------------------------------------------------------------------------------ one learner

@dataclass(frozen=True)
class Keeping:
    """What a :class:`Learner` keeps of its run: ``identity`` (checked against the checkpoints it
    finds), ``run_dir`` (the checkpoints' folder; None: no files) and ``keep_best`` (hold the weights
    of the best epoch in memory, restored from ``best.pt`` on resumption)."""

    identity: dict
    run_dir: Path | str | None = None
    keep_best: bool = False


class Learner:
    """One network being trained (see the module docstring for checkpoints and history)."""

    def __init__(self, name: str, net: nn.Module, recipe: Recipe, loss_fn: LossFn, steps_per_epoch: int,
                 ctx: DistContext, precision: Precision, keeping: Keeping):
        self.name = name
        self.recipe = recipe
        self.loss_fn = loss_fn
        self.ctx = ctx
        self.precision = precision
        self.identity = keeping.identity
        self.run_dir = Path(keeping.run_dir) if keeping.run_dir is not None else None
        self.keep_best = keeping.keep_best
        self.net = net.to(ctx.device, memory_format=precision.memory_format)
        self.optimizer = make_sgd(self.net.parameters(), recipe)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_factor(recipe.epochs * steps_per_epoch))
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=precision.dtype == torch.float16)
        self.epoch = 0
        self.history: list[dict] = []
        self.best_acc: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self._sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, correct, seen
        if self.run_dir is not None:
            self._resume()
        self.model = wrap(self.net, ctx)

    # -- training
    def start_epoch(self) -> None:
        self._sums.zero_()
        self.net.train()

    def train_step(self, x: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None) -> None:
        with self.precision.autocast(self.ctx.device):
            logits = self.model(x)
        loss = self.loss_fn(logits, y, teacher_logits)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        with torch.no_grad():
            self._sums[0] += loss.detach().double() * y.shape[0]
            self._sums[1] += (logits.argmax(1) == y).sum()
            self._sums[2] += y.shape[0]

    def finish_training(self) -> tuple[float, float]:
        """(mean train loss, train top-1 %) of the epoch over all processes; stops on divergence."""
        loss_sum, correct, seen = all_reduce_sum(self._sums.clone(), self.ctx).tolist()
        loss = loss_sum / max(seen, 1)
        if not math.isfinite(loss):
            kept = (f"last good checkpoint kept at {self.run_dir / 'last.pt'} (epoch {self.epoch})"
                    if self.run_dir is not None and self.epoch > 0 else "no checkpoint kept")
            key = "kd_recipe" if isinstance(self.recipe, KDRecipe) else "teacher_recipe"
            raise DassError(f"{self.name}: training diverged in epoch {self.epoch + 1} (train loss {loss}); "
                            f"lower {key}.lr (now {self.recipe.lr:g}); {kept}")
        return loss, 100.0 * correct / max(seen, 1)

    def end_epoch(self, train_loss: float, train_acc: float, test_acc: float | None, seconds: float) -> None:
        self.epoch += 1
        self.history.append({"epoch": self.epoch, "train_loss": train_loss, "train_acc": train_acc,
                             "test_acc": test_acc, "lr": self.optimizer.param_groups[0]["lr"],
                             "seconds": seconds})
        improved = test_acc is not None and (self.best_acc is None or test_acc > self.best_acc)
        if improved:
            self.best_acc, self.best_epoch = test_acc, self.epoch
            if self.keep_best:
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()}
        if self.run_dir is not None and self.ctx.is_main:
            if improved:
                atomic_torch_save({"format": CKPT_FORMAT, "identity": self.identity, "epoch": self.epoch,
                                   "test_acc": test_acc, "state_dict": self.net.state_dict()},
                                  self.run_dir / "best.pt")
            atomic_torch_save(self._checkpoint(), self.run_dir / "last.pt")

    # -- results
    def summary(self) -> dict:
        """best/final test top-1 (%), final train loss, wall seconds, epoch of the best, history."""
        last = self.history[-1]
        return {"best_acc": self.best_acc, "final_acc": last["test_acc"], "final_loss": last["train_loss"],
                "best_epoch": self.best_epoch, "wall_s": sum(h["seconds"] for h in self.history),
                "history": [dict(h) for h in self.history]}

    # -- checkpoints
    def _checkpoint(self) -> dict:
        rng = {"cpu": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        return {"format": CKPT_FORMAT, "identity": self.identity, "epoch": self.epoch,
                "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "history": self.history, "best_acc": self.best_acc, "best_epoch": self.best_epoch, "rng": rng}

    def _load_checked(self, path: Path) -> dict:
        ck = safe_torch_load(path, map_location=self.ctx.device)
        if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
            raise DassError(f"{path}: not a training checkpoint of this project")
        if ck.get("identity") != self.identity:
            theirs = ck.get("identity") or {}
            diff = sorted(k for k in set(theirs) | set(self.identity) if theirs.get(k) != self.identity.get(k))
            raise DassError(f"{path} belongs to a different run (differs in: {', '.join(diff)}); "
                            f"use another run_dir or delete the folder")
        return ck

    def _resume(self) -> None:
        last = self.run_dir / "last.pt"
        if not last.is_file():
            return
        ck = self._load_checked(last)
        self.net.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.history = int(ck["epoch"]), list(ck["history"])
        self.best_acc, self.best_epoch = ck["best_acc"], ck["best_epoch"]
        torch.set_rng_state(ck["rng"]["cpu"].cpu())
        if torch.cuda.is_available() and len(ck["rng"]["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in ck["rng"]["cuda"]])
        if self.keep_best and (self.run_dir / "best.pt").is_file():
            best = self._load_checked(self.run_dir / "best.pt")
            if self.best_epoch is not None and best["epoch"] >= self.best_epoch:
                self.best_state = {k: v.cpu() for k, v in best["state_dict"].items()}


# ------------------------------------------------------------------------------ the loop

@torch.no_grad()
def top1_accuracies(nets: list[nn.Module], loader: DeviceLoader, ctx: DistContext,
                    precision: Precision) -> list[float]:
    """Top-1 (%) of each net on ``loader`` (every process evaluates its shard; counts are summed)."""
    for net in nets:
        broadcast_buffers(net, ctx)
        net.eval()
    counts = torch.zeros(len(nets) + 1, dtype=torch.float64, device=ctx.device)
    for x, y in loader:
        with precision.autocast(ctx.device):
            for i, net in enumerate(nets):
                counts[i] += (net(x).argmax(1) == y).sum()
        counts[-1] += y.shape[0]
    values = all_reduce_sum(counts, ctx).tolist()
    for net in nets:
        net.train()
    return [100.0 * c / values[-1] for c in values[:-1]]


def fit(learners: list[Learner], train_loader: DeviceLoader, test_loader: DeviceLoader,
        teacher: nn.Module | None = None, teacher_logits=None, progress: bool = False, desc: str = "train") -> None:
    """Train every learner to its recipe's ``epochs`` on the same batches (lockstep: the learners
    share their recipe, process context and precision); learners that are ahead (resumed from a
    later epoch) wait. ``teacher`` (eval mode) gives shared logits per batch; ``teacher_logits`` (a
    :class:`dass.train.logit_cache.TeacherLogits` of this loader's batches) gives the same logits
    precomputed, and the teacher is then not run."""
    recipe, ctx, precision = learners[0].recipe, learners[0].ctx, learners[0].precision
    if any((l.recipe, l.ctx, l.precision) != (recipe, ctx, precision) for l in learners):
        raise ValueError("learners trained in lockstep share one recipe, process context and precision")
    start = min(l.epoch for l in learners)
    bar = tqdm(total=recipe.epochs, initial=start, desc=desc, unit="epoch", leave=False,
               disable=not (progress and ctx.is_main))
    for epoch in range(start, recipe.epochs):
        active = [l for l in learners if l.epoch == epoch]
        t0 = time.perf_counter()
        train_loader.set_epoch(epoch)
        for l in active:
            l.start_epoch()
        cached = teacher_logits.epoch(epoch) if teacher_logits is not None else None
        for step, (x, y) in enumerate(train_loader):
            t_logits = None
            if cached is not None:
                t_logits = cached[step]
            elif teacher is not None:
                with torch.no_grad(), precision.autocast(ctx.device):
                    t_logits = teacher(x)
            for l in active:
                l.train_step(x, y, t_logits)
        train_stats = [l.finish_training() for l in active]
        if recipe.validates_after(epoch + 1):
            accs = top1_accuracies([l.net for l in active], test_loader, ctx, precision)
        else:
            accs = [None] * len(active)
        seconds = (time.perf_counter() - t0) / len(active)
        for l, (loss, acc_tr), acc in zip(active, train_stats, accs):
            l.end_epoch(loss, acc_tr, acc, seconds)
        first = active[0].history[-1]
        bar.set_postfix(loss=f"{first['train_loss']:.3f}",
                        **({"test": f"{first['test_acc']:.1f}"} if first["test_acc"] is not None else {}))
        bar.update(1)
    bar.close()


# ------------------------------------------------------------------------------ set-up helpers

def check_data(train: ImageArrays, test: ImageArrays, num_classes: int | None = None) -> int:
    """Raise DassError unless train and test (and the teacher's ``num_classes``, when given) agree on
    the classes (at least two, each with a training image); return their number. Images of any size
    are accepted (the loader resizes them)."""
    check_splits(train, test)
    if num_classes is not None and train.num_classes != num_classes:
        raise DassError(f"teacher has {num_classes} classes, dataset {train.name} has {train.num_classes}")
    return train.num_classes


def make_loaders(train: ImageArrays, test: ImageArrays, recipe: Recipe, space: SpaceConfig, seed: int,
                 ctx: DistContext, precision: Precision) -> tuple[DeviceLoader, DeviceLoader]:
    """Augmented, sharded train loader (global batch ``recipe.batch_size``) and a plain test loader."""
    size = space.image_size
    pad = size // 8 if recipe.crop_pad is None else recipe.crop_pad
    common = dict(image_size=size, mean=recipe.mean, std=recipe.std, seed=seed, rank=ctx.rank,
                  world_size=ctx.world_size, channels_last=precision.channels_last)
    tr = DeviceLoader(train, LoaderConfig(per_process_batch(recipe.batch_size, ctx), train=True, pad=pad,
                                          flip=recipe.flip, **common), ctx.device)
    if len(tr) == 0:
        raise DassError(f"dataset {train.name}: {len(train)} train images give no full batch of {recipe.batch_size}")
    te = DeviceLoader(test, LoaderConfig(recipe.eval_batch_size, train=False, pad=0, flip=False, **common), ctx.device)
    return tr, te


def load_teacher_net(space: SpaceConfig, teacher_sd: dict, num_classes: int, ctx: DistContext,
                     precision: Precision) -> nn.Module:
    """The teacher ResNet of ``space`` holding ``teacher_sd``, in eval mode on the device."""
    net = build(teacher_arch(space), space, num_classes)
    try:
        net.load_state_dict(teacher_sd)
    except RuntimeError as e:
        raise DassError(f"teacher weights do not fit the teacher of space '{space.name}': "
                        f"{str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e}") from None
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(ctx.device, memory_format=precision.memory_format).eval()


def kd_identity(arch: Arch, recipe: KDRecipe, seed: int, strategy: str, train: ImageArrays) -> dict:
    return {"kind": "kd", "arch": arch.to_dict(), "recipe": cfgmod.to_dict(recipe), "seed": int(seed),
            "remap": strategy, "dataset": train.name, "num_classes": train.num_classes, "train_size": len(train)}


def kd_learner(arch: Arch, setting: KDSetting, seed: int, steps_per_epoch: int, ctx: DistContext,
               precision: Precision, run_dir=None, name: str = "student") -> Learner:
    """A student of ``setting`` built under ``torch.manual_seed(seed)`` and remapped from its teacher
    (``setting.remap``); ``ctx`` is the process context it trains in."""
    s = setting
    torch.manual_seed(seed)
    student = remap(build(arch, s.space, s.train.num_classes), s.teacher_sd, s.remap)
    a, t = s.recipe.alpha, s.recipe.temperature
    return Learner(name, student, s.recipe, lambda out, y, tl: kd_loss(out, tl, y, a, t), steps_per_epoch, ctx,
                   precision, Keeping(kd_identity(arch, s.recipe, seed, s.remap, s.train), run_dir))


def kd_result(learner: Learner, arch: Arch, space: SpaceConfig, num_classes: int) -> dict:
    return {**learner.summary(), "macs": macs(arch, space, num_classes),
            "params": params(arch, space, num_classes), "arch": arch.to_dict()}


# ------------------------------------------------------------------------------ in-process API

def fit_teacher(space: SpaceConfig, train: ImageArrays, test: ImageArrays, recipe: TeacherRecipe, seed: int,
                run_dir=None, progress: bool = False, ctx: DistContext | None = None) -> tuple[dict, dict]:
    """Train the teacher of ``space`` from scratch (init under ``torch.manual_seed(seed)``), in the
    process context ``ctx`` (default: this process alone, device "auto").

    Returns ``(state_dict, metrics)``: the weights of the epoch with the best test top-1 (as the
    original's ``model_best``), on the CPU, and ``{best_acc, final_acc, final_loss, best_epoch,
    history, wall_s, macs, params}``.
    """
    ctx = ctx or single_process()
    precision = precision_for(ctx.device)
    num_classes = check_data(train, test)
    train_loader, test_loader = make_loaders(train, test, recipe, space, seed, ctx, precision)
    arch = teacher_arch(space)
    torch.manual_seed(seed)
    net = build(arch, space, num_classes)
    smoothing = recipe.label_smoothing
    identity = {"kind": "teacher", "space": cfgmod.to_dict(space), "recipe": cfgmod.to_dict(recipe),
                "seed": int(seed), "dataset": train.name, "num_classes": num_classes, "train_size": len(train)}
    learner = Learner("teacher", net, recipe, lambda s, y, _t: smoothed_cross_entropy(s, y, smoothing),
                      len(train_loader), ctx, precision, Keeping(identity, run_dir, keep_best=True))
    fit([learner], train_loader, test_loader, progress=progress, desc="teacher")
    if learner.best_state is None:  # only when a resumed run's best.pt was removed
        raise DassError(f"{Path(run_dir) / 'best.pt'} is missing or older than last.pt; delete the run folder and retrain")
    metrics = {**learner.summary(), "macs": macs(arch, space, num_classes), "params": params(arch, space, num_classes)}
    return learner.best_state, metrics
