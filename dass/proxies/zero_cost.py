"""Zero-cost proxies: one number per network from one batch, without training (higher = better).

Every proxy takes a network and (except ``synflow``) one batch ``x: B x C x H x W`` (labels ``y: B``
where a loss is needed), runs the network in eval mode (so a remapped student keeps its teacher's BN
statistics) and returns a Python float. The network's weights are never changed; ``grad_norm``,
``snip`` and ``jacov`` leave gradients in ``.grad`` (cleared on entry).

* ``grad_norm``: ``sum_l ||dL/dW_l||_2`` over the conv and linear weights ``W_l``; ``L`` the mean
  cross-entropy of the batch.
* ``snip`` (Lee et al. 2019): ``sum_l sum |W_l * dL/dW_l|``.
* ``synflow`` (Tanaka et al. 2020): on a copy of the network in float64 with every BatchNorm removed
  (identity), every parameter replaced by its absolute value, and an all-ones input of one image:
  ``R = sum(output)``, score ``sum_l sum W_l * dR/dW_l`` (all terms are >= 0).
* ``naswot`` (Mellor et al. 2021): the binary code of every ReLU (1 where active) for each image;
  ``K[i, j]`` = number of units on which images ``i`` and ``j`` agree (``N_A`` minus the Hamming
  distance, summed over ReLUs); score ``log det K``, ``-inf`` when ``K`` is singular (e.g. two
  images with identical codes).
* ``jacov`` (Mellor et al. 2020, v1): ``J`` = the gradient of the summed output w.r.t. each input
  image (``B x CHW``); with ``sigma`` the eigenvalues of ``corrcoef(J)`` and ``k = 1e-5``, score
  ``-sum(log(sigma + k) + 1 / (sigma + k))``; ``nan`` when a row of ``J`` is constant.

* ``inherit`` (this project's, distillation-aware through the remapping): the top-1 accuracy (%)
  the student inherits from its teacher: the remapped, untrained student classifies the batch with
  its BatchNorm layers normalising by the batch's own statistics (training-mode BN on a copy, no
  gradient; the teacher's running statistics do not fit a network with blocks or channels cut
  away). Needs a large batch (:data:`dass.proxies.batch.PROXY_IMAGES`: 1,024 images) to be more
  than a few quantised values.

DisWOT (Dong et al. 2023, training-free and distillation-aware) is not a one-network proxy: it
compares the student with the teacher. :func:`diswot` computes its *relation* term: for every stage
``l`` of the two networks (same input ``x``, eval mode, no gradient), ``F_l`` = the stage output
flattened per image (``B x C_l H_l W_l``), the sample-relation matrix ``G_l = F_l F_l^T`` (``B x B``)
with each row divided by its L2 norm (the similarity-preserving KD normalisation), and

    diswot = -(1 / L) * sum_l ||G_l(student) - G_l(teacher)||_F^2 / B

(``<= 0``; 0 exactly when the student relates the images as the teacher does, e.g. the teacher
itself). The paper's second term (Grad-CAM channel similarity of the classifier) is not computed.
Stage widths may differ: ``G`` is ``B x B`` either way. Evaluation scores the remapped, untrained
student against the task's trained teacher on a batch of the task's training images.

ReLU sites of this project's ResNet: its ReLUs are functional calls, so the codes are read from the
pre-activations (the stem's ``bn1`` and every block's ``bn1`` output, active where > 0) and from
every block's output (the post-ReLU sum, active where > 0); ``nn.ReLU`` modules of other networks
are hooked directly.
"""
from __future__ import annotations

import copy
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..space.resnet import BasicBlock, ResNet

PROXIES = ("grad_norm", "snip", "synflow", "naswot", "jacov", "inherit")


def scored_layers(net: nn.Module) -> list[nn.Module]:
    """The conv and linear layers whose weights the proxies sum over, in module order."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[nn.Module]:
    net.eval()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    return scored_layers(net)


def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    layers = _loss_grads(net, x, y)
    return float(sum(m.weight.grad.double().norm() for m in layers))


def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    layers = _loss_grads(net, x, y)
    return float(sum((m.weight.detach().double() * m.weight.grad.double()).abs().sum() for m in layers))


def _without_batchnorm(net: nn.Module) -> nn.Module:
    out = copy.deepcopy(net)
    for name, module in list(out.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, child_name, nn.Identity())
    return out


def synflow(net: nn.Module, input_shape: tuple[int, int, int]) -> float:
    """``input_shape``: ``(C, H, W)`` of one image."""
    lin = _without_batchnorm(net).double().eval()
    with torch.no_grad():
        for p in lin.parameters():
            p.abs_()
    lin.zero_grad(set_to_none=True)
    device = next(lin.parameters()).device
    lin(torch.ones(1, *input_shape, dtype=torch.float64, device=device)).sum().backward()
    return float(sum((m.weight.detach() * m.weight.grad).sum() for m in scored_layers(lin)))


def relu_sites(net: nn.Module) -> list[nn.Module]:
    """Modules whose output is positive exactly where one ReLU is active (see module doc)."""
    sites: list[nn.Module] = [net.bn1] if isinstance(net, ResNet) else []
    for m in net.modules():
        if isinstance(m, BasicBlock):
            sites += [m.bn1, m]
        elif isinstance(m, nn.ReLU):
            sites.append(m)
    return sites


def hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``codes: B x N`` binary -> ``B x B`` float64 count of agreeing units."""
    c = codes.double()
    return c @ c.T + (1 - c) @ (1 - c).T


def logdet(K: torch.Tensor) -> float:
    """``log det K`` of a PSD kernel; ``-inf`` when it is singular (non-positive determinant)."""
    sign, value = torch.linalg.slogdet(K.double().cpu())
    return float(value) if float(sign) > 0 else float("-inf")


@torch.no_grad()
def naswot_kernel(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``B x B`` float64: for images ``i, j`` the number of ReLU units on which their codes agree."""
    net.eval()
    B = x.shape[0]
    K = torch.zeros(B, B, dtype=torch.float64, device=x.device)

    def hook(module, inp, out):
        K.add_(hamming_kernel((out > 0).reshape(B, -1)))

    handles = [m.register_forward_hook(hook) for m in relu_sites(net)]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return K


def naswot(net: nn.Module, x: torch.Tensor) -> float:
    return logdet(naswot_kernel(net, x))


def jacov(net: nn.Module, x: torch.Tensor) -> float:
    net.eval()
    net.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    net(x).sum().backward()
    J = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()
    if np.any(J.std(axis=1) == 0):
        return float("nan")
    sigma = np.linalg.eigvalsh(np.corrcoef(J))
    k = 1e-5
    return float(-np.sum(np.log(sigma + k) + 1.0 / (sigma + k)))


@torch.no_grad()
def relation_matrices(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Row-normalised ``B x B`` sample-relation matrices of every stage output (float64)."""
    net.eval()
    out = []
    for f in net.forward_stages(x):
        f = f.reshape(f.shape[0], -1).double()
        g = f @ f.T
        out.append(g / g.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return out


def diswot(student: nn.Module, teacher_relations: list[torch.Tensor], x: torch.Tensor) -> float:
    """DisWOT relation score of ``student`` against the teacher's :func:`relation_matrices` on ``x``."""
    rs = relation_matrices(student, x)
    if len(rs) != len(teacher_relations):
        raise ValueError(f"student has {len(rs)} stages, the teacher {len(teacher_relations)}")
    b = x.shape[0]
    return float(-sum(float(((s - t) ** 2).sum()) for s, t in zip(rs, teacher_relations)) / (len(rs) * b))


@torch.no_grad()
def inherit(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy (%) of ``net`` on ``(x, y)`` with batch-statistics BatchNorm (on a copy)."""
    probe = copy.deepcopy(net).train()
    return float((probe(x).argmax(1) == y).double().mean()) * 100.0


def compute(name: str, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Proxy ``name`` of ``net`` on batch ``(x, y)`` (``synflow`` only reads ``x``'s image shape)."""
    if name == "grad_norm":
        return grad_norm(net, x, y)
    if name == "snip":
        return snip(net, x, y)
    if name == "synflow":
        return synflow(net, tuple(x.shape[1:]))
    if name == "naswot":
        return naswot(net, x)
    if name == "jacov":
        return jacov(net, x)
    if name == "inherit":
        return inherit(net, x, y)
    raise ValueError(f"unknown proxy {name!r} (known: {', '.join(PROXIES)})")
