"""The one rule that turns a ``device`` setting into a ``torch.device``."""
from __future__ import annotations

import torch

from .errors import DassError


def resolve_device(name=None) -> torch.device:
    """``"auto"`` (or None) -> ``cuda`` when CUDA is available, else ``cpu``; a ``torch.device`` or a
    device name (``cpu``, ``cuda``, ``cuda:<i>``) -> that device, which must exist: a CUDA device
    without CUDA is a one-line DassError, as is a name torch does not know."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise DassError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:<i>)") from None
    if dev.type not in ("cpu", "cuda"):  # 'meta' and friends hold no data to compute on
        raise DassError(f"device '{name}' cannot run this project (use auto, cpu, cuda or cuda:<i>)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DassError(f"device '{name}' requested but CUDA is not available")
    return dev
