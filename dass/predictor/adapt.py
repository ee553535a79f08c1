"""The inner loop: adapt the predictor to a task on its support set (the teacher alone).

Parameters are handled as a dict ``name -> tensor`` and the model is called with
``torch.func.functional_call``, so the adapted parameters stay a differentiable function of the
meta-parameters and of the learnable inner learning rates. One step is

    theta' = theta - lr (elementwise) * d MSE(f(support; theta), label) / d theta

with one learning-rate tensor per parameter tensor (same shape, Meta-SGD style). With
``first_order=False`` the gradient is built with ``create_graph=True`` so the outer loss
differentiates through it (second order, the paper's choice).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .data import support_target, take


def init_inner_lrs(model: nn.Module, value: float) -> dict[str, torch.Tensor]:
    """One learnable tensor per parameter, filled with ``value``."""
    return {k: torch.full_like(p, float(value)).requires_grad_(True) for k, p in model.named_parameters()}


def adapt(model: nn.Module, params: dict[str, torch.Tensor], inner_lrs: dict[str, torch.Tensor],
          support: dict, label: torch.Tensor, steps: int = 1, first_order: bool = False) -> dict[str, torch.Tensor]:
    """Return the parameters after ``steps`` gradient steps on ``support`` (MSE to ``label``).

    ``params`` must require grad. With ``first_order`` the gradients are constants for the outer
    loop (the learning rates still receive gradients).
    """
    for _ in range(steps):
        pred = functional_call(model, params, (support,))
        loss = F.mse_loss(pred, label.expand_as(pred))
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order, allow_unused=True)
        params = {k: p if g is None else p - inner_lrs[k] * g for (k, p), g in zip(params.items(), grads)}
    return params


def adapted_params(model: nn.Module, inner_lrs: dict[str, torch.Tensor], support: dict, label: torch.Tensor,
                   steps: int = 1) -> dict[str, torch.Tensor]:
    """Adaptation for inference: detached adapted parameters (no outer gradient is kept)."""
    with torch.enable_grad():
        params = {k: p.detach().requires_grad_(True) for k, p in model.named_parameters()}
        lrs = {k: v.detach() for k, v in inner_lrs.items()}
        new = adapt(model, params, lrs, support, label, steps, first_order=True)
    return {k: v.detach() for k, v in new.items()}


@torch.no_grad()
def predict(model: nn.Module, params: dict[str, torch.Tensor], inputs: dict) -> torch.Tensor:
    return functional_call(model, params, (inputs,))


def predict_task(model: nn.Module, inner_lrs: dict[str, torch.Tensor], target: dict, steps: int, task,
                 device=None) -> torch.Tensor:
    """Adapt on ``task``'s teacher (support label from ``target``), predict every student (CPU tensor)."""
    needs = model.needs
    support = take(task.support(needs), device=device)
    label = torch.tensor([support_target(target, task.teacher_acc)], device=device)
    params = adapted_params(model, inner_lrs, support, label, steps)
    return predict(model, params, take(task.inputs(needs), device=device)).cpu()
