"""Training losses. Logits are ``B x K`` (any float dtype; computed in float32), labels ``B`` int64.

KD loss (docs/PAPER.md, "KD")::

    (1 - alpha) * T^2 * sum_b softCE(student_b / T, teacher_b / T) / B  +  alpha * sum_b CE_b / B

with ``softCE(s, t) = -sum_k softmax(t)_k * log_softmax(s)_k``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``-sum_b sum_k target_probs[b, k] * log_softmax(logits)[b, k]`` (summed over the batch)."""
    return -(target_probs * F.log_softmax(logits.float(), dim=1)).sum()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor,
            alpha: float, temperature: float) -> torch.Tensor:
    """The KD objective (a scalar). ``teacher_logits`` may be None only when ``alpha == 1``."""
    s = student_logits.float()
    batch = s.shape[0]
    hard = F.cross_entropy(s, labels, reduction="sum") / batch
    if alpha == 1.0:
        return hard
    if teacher_logits is None:
        raise ValueError("kd_loss needs teacher logits when alpha < 1")
    t = temperature
    p_teacher = F.softmax(teacher_logits.float() / t, dim=1)
    soft = soft_cross_entropy(s / t, p_teacher) / batch
    return (1.0 - alpha) * t * t * soft + alpha * hard


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Mean cross-entropy against ``(1 - smoothing) * onehot + smoothing / K`` (the teacher's loss)."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
