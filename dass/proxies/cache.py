"""A folder of computed proxy scores, so that a task's students are scored once, not once per run.

An entry is the scores of one proxy over one list of students, stored under a key that hashes
everything they depend on: the proxy's name, :data:`VERSION` (bumped when a proxy's code changes
what it computes), the space, the students' architectures, the remap strategy, the teacher's
weights (tensor bytes), the image batch and its labels (tensor bytes) and the device type (a GPU's
kernels round differently). A changed dataset, teacher or batch size therefore misses the cache
and is computed; nothing is looked up by name alone. One JSON file per entry,
``<label>-<key[:16]>.json`` (``label`` names the task and proxy for a reader), written atomically;
a file that cannot be read or does not hold its key counts as a miss and is rewritten.

Used by the evaluation (``proxy.cache``, written, and ``proxy.read_only_caches``, only read): the
shipped database's proxy scores are committed under ``assets/cpu/proxy_cache`` (a read-only cache of
the cpu profile), so the demo's baselines and proxy ensemble do not recompute the zero-cost proxies
of 1,800 students, and new entries go to ``runs/cache/proxy``.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DassError
from ..hashing import proxy_key_sha256, proxy_state_sha256
from ..io import atomic_write_json
from .batch import ProxySetting, archs_proxy

log = logging.getLogger("dass.proxies")

VERSION = 1


def key(name: str, archs, space, strategy: str, teacher_digest: str, x: torch.Tensor, y: torch.Tensor,
        device) -> str:
    """The cache key of proxy ``name`` over ``archs`` (see module doc)."""
    sp = asdict(space) if is_dataclass(space) else space
    head = {"proxy": name, "version": VERSION, "space": sp, "strategy": str(strategy),
            "teacher": teacher_digest, "device": torch.device(device).type,
            "archs": [a.to_dict() for a in archs]}
    return proxy_key_sha256(head, x, y)


class ProxyCache:
    """Proxy scores under ``folder`` (created on the first write; None or "": nothing is written);
    ``read_only`` folders (the shipped entries) are looked up after it and never written."""

    def __init__(self, folder, read_only=()):
        self.folder = Path(folder) if folder else None
        self.read_only = [Path(f) for f in read_only]
        self.hits = 0
        self.misses = 0

    def describe(self) -> str:
        """The folders it reads, for a message: ``'<folder>' (+ read-only '<folder>', ...)``."""
        own = f"'{self.folder}'" if self.folder is not None else "(none written)"
        return own + "".join(f" + read-only '{f}'" for f in self.read_only)

    def _path(self, label: str, k: str, folder: Path) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:80]
        return folder / f"{safe}-{k[:16]}.json"

    def get(self, label: str, k: str, n: int) -> np.ndarray | None:
        """The stored scores of key ``k`` (``n`` floats), or None."""
        for folder in [f for f in (self.folder, *self.read_only) if f is not None]:
            out = self._read(self._path(label, k, folder), k, n)
            if out is not None:
                self.hits += 1
                return out
        self.misses += 1
        return None

    @staticmethod
    def _read(path: Path, k: str, n: int) -> np.ndarray | None:
        try:
            d = json.loads(path.read_text())
            if d.get("key") != k or len(d["values"]) != n:
                raise ValueError("another entry")
            return np.array([np.nan if v is None else float(v) for v in d["values"]], dtype=np.float64)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("proxy cache: ignoring %s (%s)", path, e)
            return None

    def put(self, label: str, k: str, values) -> None:
        """Store ``values`` under ``k`` (NaN as null); a folder that cannot be written costs a warning."""
        if self.folder is None:
            return
        vals = [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64)]
        try:
            atomic_write_json(self._path(label, k, self.folder), {"label": label, "key": k, "values": vals}, indent=0)
        except OSError as e:
            log.warning("proxy cache: cannot write under %s (%s)", self.folder, e)


def entry_key(name: str, archs, setting: ProxySetting, batch: tuple) -> str:
    """The key of proxy ``name`` over ``archs`` in ``setting`` on ``batch``: :func:`key`, the teacher
    by ``setting.teacher_digest`` when given (else hashed from ``setting.teacher_sd``)."""
    digest = setting.teacher_digest or proxy_state_sha256(setting.teacher_sd)
    return key(name, archs, setting.space, setting.strategy, digest, batch[0], batch[1], setting.device)


def stored_archs_proxy(cache: ProxyCache | None, label: str, name: str, archs, setting: ProxySetting,
                       batch: tuple) -> np.ndarray | None:
    """The scores :func:`cached_archs_proxy` would read from ``cache``, or None on a miss (or without
    a cache): never computed, so ``setting.teacher_sd`` may be None when ``setting.teacher_digest``
    names the teacher (a task whose checkpoint is not at hand)."""
    if cache is None:
        return None
    return cache.get(label, entry_key(name, archs, setting, batch), len(archs))


class MissingProxy(DassError):
    """A proxy entry the cache lacks, for a teacher known only by its digest (``setting.teacher_sd``
    None): computing it needs the teacher's weights. ``name``: the proxy; ``entry``: whose scores
    (``"the students'"`` or ``"the teacher's own"``, read from the entry's label)."""

    def __init__(self, label: str, name: str):
        self.name = name
        self.entry = "the teacher's own" if label.endswith(".teacher") else "the students'"
        super().__init__(f"{label}: proxy {name} ({self.entry}) is not in the proxy cache and computing it needs "
                         f"the teacher's weights")


def cached_archs_proxy(cache: ProxyCache | None, label: str, name: str, archs, setting: ProxySetting, batch: tuple,
                       progress: bool = False, desc: str = "") -> np.ndarray:
    """:func:`dass.proxies.batch.archs_proxy`, read from ``cache`` when it holds the entry and stored
    there when it did not (``cache`` None: always computed). ``setting.teacher_digest`` saves hashing
    the teacher again (:func:`dass.hashing.proxy_state_sha256`). Without the teacher's weights
    (``setting.teacher_sd`` None, the teacher named by its digest) the entry is only read:
    :class:`MissingProxy` when the cache does not hold it."""
    if setting.teacher_sd is None:
        found = stored_archs_proxy(cache, label, name, archs, setting, batch)
        if found is None:
            raise MissingProxy(label, name)
        return found
    if cache is None:
        return archs_proxy(name, archs, setting, batch, progress, desc)
    k = entry_key(name, archs, setting, batch)
    hit = cache.get(label, k, len(archs))
    if hit is not None:
        return hit
    out = archs_proxy(name, archs, setting, batch, progress, desc)
    cache.put(label, k, out)
    return out
