"""Search throughput on the cpu profile: batched functional maps vs one network at a time, then a
whole search end to end.

    python bench/bench_search.py            # 10,000 candidates end to end (target < 60 s on 2 cores)
    python bench/bench_search.py --quick    # smaller counts, a smoke run
    python bench/bench_search.py --threads 1   # on a machine shared with other jobs (see below)

On a 2-core machine already busy with other processes, torch's default two threads spin against
them and every small convolution slows down by one to two orders of magnitude; one thread avoids it.

The teacher is a randomly initialised cpu-profile ResNet and the predictor an untrained STA
predictor: throughput does not depend on the weights.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dass import config as cfgmod  # noqa: E402
from dass.io import atomic_torch_save  # noqa: E402
from dass.predictor import (InputDims, LoadedPredictor, Predictor, PredictorConfig, init_inner_lrs,  # noqa: E402
                            save_predictor)
from dass.search import SearchConfig, run  # noqa: E402
from dass.space import (ResNet, functional_map_single, functional_maps, load_space, sample_unique,  # noqa: E402
                        teacher_arch)


def rate(fn, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return n / dt, dt


def write_inputs(folder: Path, space) -> tuple[Path, Path]:
    torch.manual_seed(0)
    teacher = folder / "teacher.pt"
    net = ResNet(teacher_arch(space), space, space.num_classes)
    atomic_torch_save({"state_dict": net.state_dict(), "space": cfgmod.to_dict(space),
                       "num_classes": space.num_classes, "metrics": {"best_acc": 50.0}}, teacher)
    model = Predictor(PredictorConfig(InputDims.for_space(space), "STA"))
    pred = LoadedPredictor(model, init_inner_lrs(model, 0.005), space,
                           {"kind": "raw", "label": "best_acc", "support_default": 0.0},
                           {"steps": 1, "first_order": False},
                           {"noise_seed": 0, "remap": "copy_paste_first", "dataset_feats": 0})
    save_predictor(pred, folder / "best.pt")
    return teacher, folder / "best.pt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    ap.add_argument("--space", default=str(ROOT / "configs/space/cpu.yaml"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    space = load_space(args.space)
    n_batched, n_single, n_search = (512, 32, 1000) if args.quick else (2048, 128, 10000)
    print(f"space '{space.name}', torch threads {torch.get_num_threads()}, device {args.device}")

    torch.manual_seed(0)
    sd = ResNet(teacher_arch(space), space, space.num_classes).eval().state_dict()
    archs = sample_unique(space, n_batched, np.random.default_rng(0))
    functional_maps(archs[:8], sd, space, space.num_classes, 0, device=args.device)  # warm-up
    batched, _ = rate(lambda: functional_maps(archs, sd, space, space.num_classes, 0, batch_size=256,
                                              device=args.device), n_batched)
    single, _ = rate(lambda: [functional_map_single(a, sd, space, space.num_classes, 0) for a in archs[:n_single]],
                     n_single)
    print(f"functional maps, batched (batch 256): {batched:,.0f} candidates/s ({n_batched} candidates)")
    print(f"functional maps, one network each:    {single:,.0f} candidates/s ({n_single} candidates)")
    print(f"speed-up: {batched / single:.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        teacher, predictor = write_inputs(Path(tmp), space)
        cfg = cfgmod.load(SearchConfig, None, [f"teacher={teacher}", f"predictor={predictor}", f"run_dir={tmp}/run",
                                               f"pool_size={n_search}", "progress=false", f"device={args.device}"])
        t0 = time.perf_counter()
        result = run(cfg)
        total = time.perf_counter() - t0
    print(f"end to end: {n_search} candidates sampled, mapped and scored in {total:.1f} s "
          f"({n_search / total:,.0f} candidates/s; search's own clock {result['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
