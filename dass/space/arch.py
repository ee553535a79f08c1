"""Architectures of the student space: depth per stage and width per block.

An :class:`Arch` is immutable and hashable: ``depths[s]`` blocks in stage ``s``, block ``b`` of stage
``s`` has ``widths[s][b]`` output channels. The teacher is the architecture with every stage at the
maximum depth and every block at the full stage width.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DassError
from ..hashing import json_sha1
from ..io import read_json, safe_torch_load
from .config import SpaceConfig


@dataclass(frozen=True)
class Arch:
    depths: tuple[int, ...]
    widths: tuple[tuple[int, ...], ...]

    def __post_init__(self):
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "widths", tuple(tuple(int(w) for w in ws) for ws in self.widths))

    def to_dict(self) -> dict:
        return {"depths": list(self.depths), "widths": [list(w) for w in self.widths]}

    @classmethod
    def from_dict(cls, d) -> "Arch":
        if not isinstance(d, dict) or "depths" not in d or "widths" not in d:
            raise DassError(f"an architecture needs 'depths' and 'widths', got {d!r:.120}")
        try:
            return cls(tuple(d["depths"]), tuple(tuple(w) for w in d["widths"]))
        except (TypeError, ValueError):
            raise DassError(f"malformed architecture {d!r:.120}") from None

    def key(self) -> str:
        """Short stable identifier (hash of the canonical JSON)."""
        return json_sha1(self.to_dict())[:12]

    def __str__(self) -> str:
        return "|".join("-".join(str(w) for w in ws) for ws in self.widths)


def read_candidates_file(path) -> tuple[list, dict]:
    """The entries of a candidates file and, for a ``.pt`` file, the whole dict (else ``{}``).

    A ``.json`` file holds a list of ``{depths, widths}`` or of rows with such an ``arch``; a ``.pt``
    file (read with ``weights_only=True``) is a dict whose ``archs`` is that list, possibly beside
    precomputed inputs (e.g. ``fmap``)."""
    path = Path(path)
    if path.suffix == ".pt":
        d = safe_torch_load(path)
        if not isinstance(d, dict) or "archs" not in d:
            raise DassError(f"{path}: a candidates .pt file must be a dict with 'archs'")
        return d["archs"], d
    return read_json(path), {}


def validate(arch: Arch, space: SpaceConfig) -> Arch:
    """Raise DassError unless ``arch`` belongs to ``space``; return it otherwise."""
    if len(arch.depths) != space.num_stages or len(arch.widths) != space.num_stages:
        raise DassError(f"architecture has {len(arch.depths)} stages, space '{space.name}' has {space.num_stages}")
    for s, (d, ws) in enumerate(zip(arch.depths, arch.widths)):
        if d not in space.depths:
            raise DassError(f"stage {s + 1}: depth {d} not in space '{space.name}' depths {list(space.depths)}")
        if len(ws) != d:
            raise DassError(f"stage {s + 1}: depth {d} but {len(ws)} block widths given")
        for b, w in enumerate(ws):
            if w not in space.width_choices[s]:
                raise DassError(f"stage {s + 1} block {b + 1}: width {w} not in {list(space.width_choices[s])}")
    return arch


def teacher_arch(space: SpaceConfig) -> Arch:
    d = space.max_depth
    return Arch(tuple(d for _ in space.stage_widths), tuple((w,) * d for w in space.stage_widths))


def num_architectures(space: SpaceConfig) -> int:
    """Exact count: prod over stages of sum_{d in depths} (#widths)^d."""
    k = len(space.width_mults)
    per_stage = sum(k ** d for d in space.depths)
    return per_stage ** space.num_stages


def sample(space: SpaceConfig, rng: np.random.Generator) -> Arch:
    """Uniform over depths per stage, then uniform width per block (the OFA-style sampler)."""
    depths, widths = [], []
    for s in range(space.num_stages):
        d = space.depths[int(rng.integers(0, len(space.depths)))]   # = rng.choice(space.depths), 5x faster
        ch = space.width_choices[s]
        depths.append(d)
        widths.append(tuple(int(ch[i]) for i in rng.integers(0, len(ch), size=d)))
    return Arch(tuple(depths), tuple(widths))


def sample_unique(space: SpaceConfig, n: int, rng: np.random.Generator, exclude=(), max_tries: int | None = None,
                  accept=None) -> list[Arch]:
    """``n`` distinct architectures (none in ``exclude``), optionally filtered by ``accept(arch)``."""
    total = num_architectures(space)
    if n > total - len(set(exclude)):
        raise DassError(f"space '{space.name}' holds {total} architectures: it cannot supply {n} "
                        f"distinct ones{' besides the ' + str(len(set(exclude))) + ' excluded' if exclude else ''}")
    seen = set(exclude)
    out = []
    tries = 0
    limit = max_tries if max_tries is not None else 1000 * max(n, 1)
    while len(out) < n:
        tries += 1
        # fail fast: the rate found so far says the rest cannot come within the limit
        # (none found after 10,000 draws: the projection is infinite)
        if tries > limit or (tries % 10_000 == 0 and tries * n > limit * len(out)):
            raise DassError(f"could only find {len(out)} of {n} distinct architectures satisfying the constraints "
                            f"in {tries} draws")
        a = sample(space, rng)
        if a in seen or (accept is not None and not accept(a)):
            continue
        seen.add(a)
        out.append(a)
    return out


def neighbours(arch: Arch, space: SpaceConfig) -> list[Arch]:
    """Every architecture one step away: one block's width to an adjacent choice, or one stage's depth
    +-1 (a new block takes the width of the stage's last block)."""
    out = []
    for s in range(space.num_stages):
        ch = space.width_choices[s]
        ws = list(arch.widths[s])
        for b, w in enumerate(ws):
            i = ch.index(w)
            for j in (i - 1, i + 1):
                if 0 <= j < len(ch):
                    new = ws.copy()
                    new[b] = ch[j]
                    out.append(_replace_stage(arch, s, new))
        di = space.depths.index(arch.depths[s])
        if di + 1 < len(space.depths):
            extra = space.depths[di + 1] - len(ws)
            out.append(_replace_stage(arch, s, ws + [ws[-1]] * extra))
        if di - 1 >= 0:
            out.append(_replace_stage(arch, s, ws[: space.depths[di - 1]]))
    return out


def mutate(arch: Arch, space: SpaceConfig, rng: np.random.Generator, p_block: float = 0.2) -> Arch:
    """Resample each block width with probability ``p_block`` and each depth with the same probability;
    always returns an architecture different from ``arch``."""
    for _ in range(100):
        depths, widths = [], []
        for s in range(space.num_stages):
            ch = space.width_choices[s]
            d = space.depths[int(rng.integers(0, len(space.depths)))]   # = rng.choice(space.depths), 5x faster if rng.random() < p_block else arch.depths[s]
            old = list(arch.widths[s])
            ws = [(int(ch[rng.integers(len(ch))]) if (b >= len(old) or rng.random() < p_block) else old[b])
                  for b in range(d)]
            depths.append(d)
            widths.append(tuple(ws))
        new = Arch(tuple(depths), tuple(widths))
        if new != arch:
            return new
    nb = neighbours(arch, space)
    return nb[int(rng.integers(len(nb)))]


def _replace_stage(arch: Arch, s: int, ws: list[int]) -> Arch:
    depths = list(arch.depths)
    widths = list(arch.widths)
    depths[s] = len(ws)
    widths[s] = tuple(ws)
    return Arch(tuple(depths), tuple(widths))
