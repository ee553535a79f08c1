"""Student-space profile: the teacher ResNet and the choices a student may take.

A profile fixes the teacher (stem width = first stage width, ``stage_widths``, ``stage_strides``,
``max(depths)`` BasicBlocks per stage), the input (``image_size`` x ``image_size``, ``in_channels``) and
the student choices: a depth per stage from ``depths`` and, per block, a width
``round(stage_width * m)`` for ``m`` in ``width_mults``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from .. import config as cfgmod
from ..errors import DassError


@dataclass(frozen=True)
class SpaceConfig:
    name: str = "paper"  # profile name (labels only)
    stage_widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # teacher channels per stage
    stage_strides: list[int] = field(default_factory=lambda: [1, 2, 2, 2])  # stride of each stage (1 or 2)
    depths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])  # blocks a stage may have (teacher: the most)
    width_mults: list[float] = field(  # block widths as fractions of the stage width (with 1.0)
        default_factory=lambda: [0.5 + i / 16 for i in range(9)])
    image_size: int = 64  # input side in pixels
    in_channels: int = 3  # input channels
    num_classes: int = 100  # used by --describe and as a default; teachers carry their own

    def __post_init__(self):
        if len(self.stage_widths) != len(self.stage_strides) or not self.stage_widths:
            raise DassError(f"space '{self.name}': stage_widths and stage_strides must have the same non-zero length")
        if any(w <= 0 for w in self.stage_widths) or any(s not in (1, 2) for s in self.stage_strides):
            raise DassError(f"space '{self.name}': widths must be > 0 and strides 1 or 2")
        if not self.depths or min(self.depths) < 1 or sorted(set(self.depths)) != list(self.depths):
            raise DassError(f"space '{self.name}': depths must be increasing integers >= 1")
        if not self.width_mults or min(self.width_mults) <= 0 or max(self.width_mults) > 1:
            raise DassError(f"space '{self.name}': width_mults must lie in (0, 1]")
        if sorted(set(self.width_mults)) != list(self.width_mults):
            raise DassError(f"space '{self.name}': width_mults must be increasing and distinct")
        if max(self.width_mults) != 1.0:
            raise DassError(f"space '{self.name}': width_mults must contain 1.0 (the teacher's width)")
        for w in self.stage_widths:
            ch = [round(w * m) for m in self.width_mults]
            if len(set(ch)) != len(ch) or min(ch) < 1:
                raise DassError(f"space '{self.name}': stage width {w} gives repeated or zero channel "
                                f"counts for width_mults {self.width_mults}")
        if self.in_channels < 1 or self.in_channels > 64:
            raise DassError(f"space '{self.name}': in_channels must lie in [1, 64], got {self.in_channels}")
        if self.num_classes < 2:
            raise DassError(f"space '{self.name}': num_classes must be >= 2, got {self.num_classes}")
        if max(self.stage_widths) > 16384 or max(self.depths) > 64 or len(self.stage_widths) > 16:
            raise DassError(f"space '{self.name}': at most 16 stages of width <= 16384 and depth <= 64")
        down = 1
        for s in self.stage_strides:
            down *= s
        if not down <= self.image_size <= 4096:
            raise DassError(f"space '{self.name}': image_size must lie in [{down} (the total stride), 4096], "
                            f"got {self.image_size}")
        if self.image_size % down:
            raise DassError(f"space '{self.name}': image_size {self.image_size} not divisible by total stride {down}")

    @property
    def num_stages(self) -> int:
        return len(self.stage_widths)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @cached_property
    def width_choices(self) -> tuple[tuple[int, ...], ...]:
        """Per stage, the allowed block widths in channels (increasing)."""
        return tuple(tuple(round(w * m) for m in self.width_mults) for w in self.stage_widths)

    @property
    def stem_width(self) -> int:
        return self.stage_widths[0]

    def stage_resolutions(self) -> list[int]:
        """Spatial size of each stage's output (square)."""
        out, r = [], self.image_size
        for s in self.stage_strides:
            r //= s
            out.append(r)
        return out


# Fields that define the networks of a space (the name and the describe-only num_classes are not compared).
SPACE_FIELDS = ("stage_widths", "stage_strides", "depths", "width_mults", "image_size", "in_channels")


def space_difference(a: SpaceConfig, b: SpaceConfig) -> str | None:
    """The first of :data:`SPACE_FIELDS` in which ``a`` and ``b`` differ; None when they define the
    same networks (names and class counts may differ)."""
    return next((f for f in SPACE_FIELDS if getattr(a, f) != getattr(b, f)), None)


def same_space(a: SpaceConfig, b: SpaceConfig) -> bool:
    """Whether ``a`` and ``b`` define the same networks (space equality, see :func:`space_difference`)."""
    return space_difference(a, b) is None


def load_space(path=None, overrides=None) -> SpaceConfig:
    return cfgmod.load(SpaceConfig, path, overrides)


@dataclass(frozen=True)
class LatencyConfig:
    """How a student's latency is measured and predicted on this machine (:mod:`dass.space.latency`)."""

    model: str = "lut"      # lut: per-block lookup table (+ a calibrated offset); regression: fit on measured students
    batch_size: int = 1     # images per forward pass
    threads: int = 0        # torch CPU threads while measuring; 0 = torch's current thread count
    device: str = "cpu"     # cpu, cuda or cuda:<i> (where the student will run)
    tolerance: float = 0.15  # a pick re-measured above budget x (1 + tolerance) is replaced by the next candidate
    cache_dir: str = ""     # folder of the cached tables; "" = $DASS_CACHE_DIR/latency (default ~/.cache/dass/latency)
    warmup: int = 5         # untimed passes before timing
    repeats: int = 5        # timed passes per round (the round's median is kept)
    rounds: int = 10        # rounds; the latency is the least of their medians (robust to a loaded machine)
    clock: str = "wall"     # wall: elapsed time; cpu: the thread's CPU time (1 thread, CPU: an idle machine's wall time)

    def __post_init__(self):
        if self.model not in ("lut", "regression"):
            raise DassError(f"latency.model must be lut or regression, got {self.model!r}")
        for k, lo in (("batch_size", 1), ("threads", 0), ("warmup", 0), ("repeats", 1), ("rounds", 1)):
            v = getattr(self, k)
            if not isinstance(v, int) or not lo <= v <= 100_000:
                raise DassError(f"latency.{k} must be an integer in [{lo}, 100000], got {v!r}")
        if not (isinstance(self.tolerance, (int, float)) and 0 <= self.tolerance <= 10):
            raise DassError(f"latency.tolerance must lie in [0, 10], got {self.tolerance!r}")
        if self.clock not in ("wall", "cpu") or (self.clock == "cpu" and (self.device != "cpu" or self.threads != 1)):
            raise DassError(f"latency.clock must be wall, or cpu with latency.device=cpu and latency.threads=1 (a "
                            f"thread's CPU time misses other threads and the GPU), got {self.clock!r}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise DassError(f"latency.device must be cpu, cuda or cuda:<i>, got {self.device!r}")


def check_latency_budget(value, key: str = "budget.latency_ms") -> None:
    """A latency budget is null or a finite number of milliseconds > 0; else DassError naming ``key``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise DassError(f"{key} must be a finite number of milliseconds > 0 (or null for no limit), got {value!r}")
