"""Shared helpers of the benchmarks: arguments, device, timing, machine description, reporting.

Timing: :func:`time_interleaved` runs every contender once per round (A, B, C, A, B, C, ...) after
``warmup`` untimed rounds and keeps each contender's wall seconds per round; the reported figure is
the median. Interleaving matters on a machine shared with other jobs: a load change hits every
contender alike instead of biasing whichever ran during it. CUDA work is synchronised before a
clock is read.

Reporting: each benchmark prints a markdown table (:func:`markdown_table`) and ends with one JSON
line (:func:`emit_json`): an object with ``bench`` (its name), ``machine`` (:func:`machine_info`),
``mode`` ("quick" or "full") and its numbers; ``tests/benchmarks/test_bench.py`` parses that line.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dass.device import resolve_device  # noqa: E402
from dass.errors import DassError  # noqa: E402
from dass.evaluation import tables  # noqa: E402

# Dense bf16 tensor-core peak (TFLOP/s) by GPU name; the first key contained in the CUDA device name
# wins, so the more specific names come first.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),        # SXM
    ("H200", 989.0),
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


def config_path(stage: str, profile: str) -> Path:
    """``configs/<stage>/<profile>.yaml`` of the repository."""
    return ROOT / "configs" / stage / f"{profile}.yaml"


def base_parser(description: str) -> argparse.ArgumentParser:
    """``--quick``, ``--device auto|cpu|cuda``, ``--threads N``, ``--repeats N``, ``--warmup N``."""
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: correctness checks and a smoke timing")
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda[:i]")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0: torch's default); 1 is steadier on a machine busy with other jobs")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default: 1 quick, 3 full)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default: 0 quick, 1 full)")
    return ap


def print_result(compute: Callable[[], dict], render: Callable[[dict], str], as_json: bool) -> int:
    """One torch thread, then print ``render(compute())`` (or the result as one JSON line); a
    :class:`DassError` becomes a one-line ``error:`` and exit status 2."""
    torch.set_num_threads(1)
    try:
        result = compute()
    except DassError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result) if as_json else render(result))
    return 0


def setup(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads`` and resolve ``--device``; fill the default repeats/warm-up of the mode."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.repeats < 1 or args.warmup < 0:
        raise SystemExit("need --repeats >= 1 and --warmup >= 0")
    try:
        return resolve_device(args.device)
    except DassError as e:
        raise SystemExit(f"error: {e}") from None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """(wall seconds, result) of one call, CUDA work included."""
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - t0, out


def time_interleaved(contenders: dict[str, Callable[[], object]], device: torch.device, repeats: int,
                     warmup: int) -> dict[str, list[float]]:
    """Wall seconds of each contender per timed round, contenders alternating within a round."""
    for _ in range(warmup):
        for fn in contenders.values():
            timed(fn, device)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            seconds[name].append(timed(fn, device)[0])
    return seconds


def median(values) -> float:
    return float(statistics.median(values))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()})"


def machine_info(device: torch.device) -> dict:
    """CPU model, cores, torch version and threads, python version, the device, local date/time."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "device": device_name(device), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def peak_tflops(device: torch.device) -> float | None:
    """Dense bf16 peak of a known GPU (``PEAK_BF16_TFLOPS``); None on CPU or for an unknown GPU."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS:
        if key in name:
            return value
    return None


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """:func:`dass.evaluation.tables.markdown_table` of ``rows`` whose floats are shown with 3
    significant digits (no decimals from 100 on, with thousands separators)."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return str(v)
    return tables.markdown_table(headers, [[cell(v) for v in row] for row in rows]).rstrip("\n")


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio >= target else "not met"


def emit_json(bench: str, args: argparse.Namespace, device: torch.device, **numbers) -> dict:
    """Print the benchmark's one JSON line (see the module docstring) and return the object."""
    record = {"bench": bench, "mode": "quick" if args.quick else "full", "machine": machine_info(device),
              "command": " ".join([Path(sys.executable).name] + sys.argv), **numbers}
    print(json.dumps(record, sort_keys=False))
    return record


@contextlib.contextmanager
def deterministic_kernels():
    """Correctness checks compare in deterministic mode: cuDNN's deterministic algorithms, no
    autotuning (``cudnn.benchmark`` off) and no TF32 in convolutions or matmuls; the previous
    settings come back afterwards. On an H200, a KD step of the trainer and of the reference loop
    differed by 6.4e-2 (relative) with cuDNN free to choose, 1.7e-8 in this mode (issue 31): the
    difference was the algorithm choice, not the step. Changes nothing on the CPU."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = True, False, False, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def check(ok: bool, what: str) -> None:
    """A correctness check of quick mode: print it and exit 1 when it fails."""
    print(f"check: {what}: {'ok' if ok else 'FAILED'}")
    if not ok:
        raise SystemExit(1)
