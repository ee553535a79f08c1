"""Latency of a student on the machine this runs on: measured, and predicted by a model of the space.

Measurement (:func:`measure_ms`): the network in eval mode under ``torch.inference_mode`` on one
random batch (``batch_size`` images, the device and CPU threads of :class:`LatencyConfig`), ``warmup``
untimed passes, then ``rounds`` rounds of ``repeats`` timed passes; the latency is the least of the
rounds' medians. On a machine shared with other jobs a pass is only ever slowed down, so the median
drops single outliers and the minimum over rounds drops a round hit by a burst of load. With
``clock: cpu`` (one thread, CPU) a pass is timed by the thread's CPU time (``time.thread_time``):
what the pass would take on an idle machine, without the time the thread waits for a core.

Two models, both measured once per machine and cached (:func:`latency_model`):

* ``lut`` (default, chosen by ``bench/latency_model.py``): a per-block lookup table as OFA's latency
  tables: the stem, every block ``(c_in, width, stride, input resolution)`` the space can hold and the
  head ``(width, classes)`` timed alone; a student's latency is the sum of its parts plus an offset
  (what a whole forward adds: the stage calls), the median of ``measured - sum`` over a few students;
* ``regression``: least squares of measured latency on ``1``, the blocks per stage and the MACs per
  stage, fitted on students sampled from the space.

The cache file (``<cache_dir>/<model>-<space name>-<key hash>.json``, written atomically) records
its key: the machine (``platform.machine``, the CPU model, the GPU name), the torch version, the
threads, the batch size, the device, the space's fields, the classes and the measurement settings;
a change of any of them gives another file.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DassError
from ..hashing import json_sha256
from ..io import atomic_write_json
from .arch import Arch, num_architectures, sample_unique
from .config import SPACE_FIELDS, LatencyConfig, SpaceConfig
from .cost import layer_shapes
from .resnet import BasicBlock, build

CACHE_VERSION = 1
OFFSET_STUDENTS = 8     # students whose measured - table sum gives the lut's offset
REGRESSION_STUDENTS = 60  # students the regression is fitted on


def cache_root(cfg: LatencyConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    root = os.environ.get("DASS_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dass"
    return Path(root) / "latency"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def resolved_threads(cfg: LatencyConfig) -> int:
    return cfg.threads or torch.get_num_threads()


def device_name(cfg: LatencyConfig) -> str:
    if cfg.device == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise DassError(f"latency.device={cfg.device}: no CUDA device here")
    return f"{cfg.device} ({torch.cuda.get_device_name(torch.device(cfg.device))})"


def cache_key(space: SpaceConfig, num_classes: int, cfg: LatencyConfig) -> dict:
    return {"version": CACHE_VERSION, "model": cfg.model, "machine": platform.machine(), "cpu": cpu_model(),
            "torch": torch.__version__, "threads": resolved_threads(cfg), "batch_size": cfg.batch_size,
            "device": device_name(cfg), "space": {f: getattr(space, f) for f in SPACE_FIELDS},
            "num_classes": num_classes, "warmup": cfg.warmup, "repeats": cfg.repeats, "rounds": cfg.rounds,
            "clock": cfg.clock}


def cache_file(space: SpaceConfig, num_classes: int, cfg: LatencyConfig) -> Path:
    digest = json_sha256(cache_key(space, num_classes, cfg), compact=False)
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in space.name)
    return cache_root(cfg) / f"{cfg.model}-{name}-{digest[:16]}.json"


@contextlib.contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def measure_ms(module: nn.Module, x: torch.Tensor, cfg: LatencyConfig) -> float:
    """Milliseconds of ``module(x)``: the least of ``rounds`` medians of ``repeats`` timed passes."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    clock = time.thread_time if cfg.clock == "cpu" else time.perf_counter
    module.eval()
    medians = []
    with torch.inference_mode(), torch_threads(resolved_threads(cfg)):
        for _ in range(cfg.warmup):
            module(x)
        sync()
        for _ in range(cfg.rounds):
            times = []
            for _ in range(cfg.repeats):
                t0 = clock()
                module(x)
                sync()
                times.append(clock() - t0)
            medians.append(statistics.median(times))
    return 1e3 * min(medians)


def _input(shape: tuple[int, ...], cfg: LatencyConfig) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=g).to(cfg.device)


def measure_arch(arch: Arch, space: SpaceConfig, num_classes: int, cfg: LatencyConfig) -> float:
    """Measured milliseconds of one forward pass of ``arch`` (a fresh network; latency does not depend on weights)."""
    net = build(arch, space, num_classes).to(cfg.device)
    return measure_ms(net, _input((cfg.batch_size, space.in_channels, space.image_size, space.image_size), cfg), cfg)


class _Stem(nn.Module):
    def __init__(self, space: SpaceConfig):
        super().__init__()
        self.conv1 = nn.Conv2d(space.in_channels, space.stem_width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(space.stem_width)

    def forward(self, x):
        return F.relu(self.bn1(self.conv1(x)))


class _Head(nn.Module):
    def __init__(self, width: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def block_keys(arch: Arch, space: SpaceConfig) -> list[str]:
    """The table entries one forward of ``arch`` runs through, in order."""
    keys, r_in = ["stem"], space.image_size
    shapes = list(layer_shapes(arch, space))[1:]
    for (_, c_in, w, stride, r_out), _ in zip(shapes[0::2], shapes[1::2]):
        keys.append(f"block:{c_in}:{w}:{stride}:{r_in}")
        r_in = r_out
    keys.append(f"head:{arch.widths[-1][-1]}")
    return keys


def table_entries(space: SpaceConfig) -> list[str]:
    """Every entry a student of ``space`` can use."""
    out, r, prev = ["stem"], space.image_size, (space.stem_width,)
    for choices, stride in zip(space.width_choices, space.stage_strides):
        for c_in in prev:
            out += [f"block:{c_in}:{w}:{stride}:{r}" for w in choices]
        r //= stride
        if max(space.depths) > 1:
            out += [f"block:{c_in}:{w}:1:{r}" for c_in in choices for w in choices]
        prev = choices
    return list(dict.fromkeys(out + [f"head:{w}" for w in space.width_choices[-1]]))   # stage 1 repeats the stem's


def _entry_module(key: str, space: SpaceConfig, num_classes: int, cfg: LatencyConfig):
    n = cfg.batch_size
    if key == "stem":
        return _Stem(space), (n, space.in_channels, space.image_size, space.image_size)
    kind, *nums = key.split(":")
    if kind == "head":
        r = space.stage_resolutions()[-1]
        return _Head(int(nums[0]), num_classes), (n, int(nums[0]), r, r)
    c_in, w, stride, r = (int(v) for v in nums)
    return BasicBlock(c_in, w, stride), (n, c_in, r, r)


class LatencyModel:
    """Predicted milliseconds of any architecture of one space on this machine (:meth:`predict_ms`)."""

    def __init__(self, space: SpaceConfig, num_classes: int, cfg: LatencyConfig, data: dict, path: Path | None = None):
        self.space, self.num_classes, self.cfg, self.data, self.path = space, num_classes, cfg, data, path
        self._memo: dict[Arch, float] = {}

    @property
    def setting(self) -> str:
        """The measurement conditions, in words (for logs and reports)."""
        k = self.data["key"]
        return (f"batch {k['batch_size']}, {k['threads']} thread(s), {k['device']}, {k['cpu']}, torch {k['torch']}, "
                f"{self.cfg.model} model")

    def predict_ms(self, arch: Arch) -> float:
        if arch not in self._memo:
            if self.cfg.model == "lut":
                table = self.data["table"]
                v = self.data["offset_ms"] + sum(table[k] for k in block_keys(arch, self.space))
            else:
                v = float(np.dot(self.data["coef"], regression_features(arch, self.space)))
            self._memo[arch] = max(v, 1e-6)   # a fit could dip below zero for the smallest nets
        return self._memo[arch]


def regression_features(arch: Arch, space: SpaceConfig) -> list[float]:
    """``1``, blocks per stage, MACs per stage (millions) of ``arch``."""
    macs_per_stage = [0.0] * space.num_stages
    for name, c_in, w, _, r in layer_shapes(arch, space):
        if name.startswith("layer"):
            macs_per_stage[int(name[5:].split(".")[0]) - 1] += r * r * 9 * c_in * w / 1e6
    return [1.0, *map(float, arch.depths), *macs_per_stage]


def _students(space: SpaceConfig, n: int, seed: int) -> list[Arch]:
    return sample_unique(space, min(n, num_architectures(space)), np.random.default_rng(seed))


def _build_lut(space: SpaceConfig, num_classes: int, cfg: LatencyConfig) -> dict:
    table = {}
    for key in table_entries(space):
        module, shape = _entry_module(key, space, num_classes, cfg)
        table[key] = measure_ms(module.to(cfg.device), _input(shape, cfg), cfg)
    gaps = [measure_arch(a, space, num_classes, cfg) - sum(table[k] for k in block_keys(a, space))
            for a in _students(space, OFFSET_STUDENTS, seed=1)]
    return {"table": table, "offset_ms": statistics.median(gaps)}


def _build_regression(space: SpaceConfig, num_classes: int, cfg: LatencyConfig) -> dict:
    archs = _students(space, REGRESSION_STUDENTS, seed=1)
    x = np.array([regression_features(a, space) for a in archs])
    y = np.array([measure_arch(a, space, num_classes, cfg) for a in archs])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return {"coef": coef.tolist()}


def latency_model(space: SpaceConfig, num_classes: int, cfg: LatencyConfig) -> LatencyModel:
    """The model for ``space`` on this machine: read from the cache, else measured (seconds to a
    minute) and cached."""
    path = cache_file(space, num_classes, cfg)
    key = cache_key(space, num_classes, cfg)
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("key") == json.loads(json.dumps(key)):
            return LatencyModel(space, num_classes, cfg, data, path)
    except (OSError, ValueError):
        pass    # absent or unreadable: measured again below
    build_fn = _build_lut if cfg.model == "lut" else _build_regression
    data = {"key": key, **build_fn(space, num_classes, cfg)}
    try:
        atomic_write_json(path, data)
    except OSError as e:
        raise DassError(f"cannot write the latency table {path}: {e.strerror} (set latency.cache_dir)") from None
    return LatencyModel(space, num_classes, cfg, data, path)
