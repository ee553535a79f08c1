"""Device choice and the DistributedDataParallel plumbing of the trainer.

A run started by ``torchrun`` (environment ``WORLD_SIZE`` > 1) joins a process group (NCCL on CUDA,
gloo on CPU); each process takes ``batch_size / WORLD_SIZE`` images of every global batch, metrics
are summed over processes and only rank 0 writes files. Without ``torchrun`` everything here is a
no-op on a single process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..device import resolve_device
from ..errors import DassError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, computing on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def single_process(device: str | torch.device = "auto") -> DistContext:
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return DistContext(0, 1, dev)


def init_distributed(device: str = "auto") -> DistContext:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1, else a single-process context.

    On CUDA each process takes GPU ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return single_process(device)
    dev = resolve_device(device)
    rank = int(os.environ["RANK"])
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, dev)


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and tdist.is_initialized():
        tdist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over processes in place (returns it)."""
    if ctx.distributed:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def broadcast_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Give every process rank 0's buffers (BN running statistics) before an evaluation."""
    if ctx.distributed:
        for b in module.buffers():
            tdist.broadcast(b, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        tdist.barrier()


def wrap(model: nn.Module, ctx: DistContext) -> nn.Module:
    """The module the training step calls: DDP around ``model`` when distributed, else ``model``."""
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def per_process_batch(batch_size: int, ctx: DistContext) -> int:
    if batch_size % ctx.world_size:
        raise DassError(f"batch_size {batch_size} is not divisible by the {ctx.world_size} processes")
    return batch_size // ctx.world_size
