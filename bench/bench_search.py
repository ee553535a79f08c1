"""Search throughput on the cpu profile: the shipped default predictor end to end, with the
shortlist's zero-cost proxies in batched passes vs one network at a time; then batched functional
maps vs one network at a time.

    python bench/bench_search.py --threads 1            # 10,000 candidates (target <= 5 s on 2 cores)
    python bench/bench_search.py --threads 1 --quick    # 1,000 candidates, a smoke run

Default predictor: ``assets/cpu/predictors/dass/best.pt`` (reads NASWOT and synflow: the 256 best
by the pre-filter are re-scored with them computed) adapted on the shipped ``glyphs/ogham`` teacher,
on the glyph data under ``--data-root``. ``default_predictor_s`` is the wall time of
``dass.search.run`` for ``pool_size`` candidates (sampling, functional maps, scoring, proxies of
the shortlist, re-scoring, writing ``top.json``/``scores.csv``), in one process after a warm-up
search of 300 candidates (imports and first-call costs excluded); ``reference_s`` the same search
with the proxies computed one network at a time (``archs_proxy(..., batched=False)``), timed
alternately; ``ratio = reference_s / default_predictor_s``; ``*_cpu_s``: the process's CPU time of
the same searches (with one thread, close to the wall time of an idle machine). Both searches must write the same scores
(checked). Without the data, this part is skipped (``null``).

On a 2-core machine already busy with other processes, torch's default two threads spin against
them and every small convolution slows down by one to two orders of magnitude; one thread avoids it.
"""
from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import base_parser, check, emit_json, markdown_table, median, setup  # noqa: E402
from dass import config as cfgmod  # noqa: E402
from dass.proxies import batch as proxy_batch, cache as proxy_cache  # noqa: E402
from dass.search import SearchConfig, run  # noqa: E402
from dass.space import (MapRun, ResNet, functional_map_single, functional_maps, load_space, sample_unique,  # noqa: E402
                        teacher_arch)

PREDICTOR = ROOT / "assets/cpu/predictors/dass/best.pt"
TEACHER = ROOT / "assets/cpu/teachers/glyphs-ogham/teacher.pt"
DATASET = "glyphs/ogham"


def search(folder: Path, name: str, n: int, data_root: str, device, batched: bool) -> tuple[tuple, dict, list]:
    """(wall, CPU) seconds, top.json and every candidate's score of one search of ``n`` candidates."""
    cfg = cfgmod.load(SearchConfig, str(ROOT / "configs/search/cpu.yaml"),
                      [f"teacher={TEACHER}", f"predictor={PREDICTOR}", f"run_dir={folder / name}",
                       f"dataset={DATASET}", f"data_root={data_root}", f"pool_size={n}", "progress=false",
                       f"device={device.type}"])
    fn = proxy_batch.archs_proxy if batched else functools.partial(proxy_batch.archs_proxy, batched=False)
    saved = proxy_cache.archs_proxy
    proxy_cache.archs_proxy = fn  # what dass.proxies.cache (and so the search) calls
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        result = run(cfg)
        dt = (time.perf_counter() - t0, time.process_time() - c0)
    finally:
        proxy_cache.archs_proxy = saved
    scores = [float(line.split(",")[1]) for line in (folder / name / "scores.csv").read_text().splitlines()[1:]]
    return dt, result, scores


def default_predictor(args, device, n: int) -> dict:
    data_root = Path(args.data_root)
    if not (data_root / DATASET).exists() or not PREDICTOR.is_file():
        print(f"default predictor: skipped ({data_root / DATASET} or {PREDICTOR} not found)")
        return {"default_predictor_s": None, "reference_s": None, "ratio": None}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        search(folder, "warm", 300, str(data_root), device, True)
        fast, slow, same = [], [], True
        for r in range(args.repeats):
            dt, res_fast, s_fast = search(folder, f"fast{r}", n, str(data_root), device, True)
            fast.append(dt)
            dt, res_slow, s_slow = search(folder, f"slow{r}", n, str(data_root), device, False)
            slow.append(dt)
            same &= bool(np.allclose(s_fast, s_slow, rtol=1e-5, atol=1e-6)) and \
                [t["arch"] for t in res_fast["top"]] == [t["arch"] for t in res_slow["top"]]
    check(same, "batched and one-at-a-time proxies give the same scores and picks")
    wall = {k: median([t[0] for t in v]) for k, v in (("fast", fast), ("slow", slow))}
    cpu = {k: median([t[1] for t in v]) for k, v in (("fast", fast), ("slow", slow))}
    out = {"default_predictor_s": round(wall["fast"], 3), "reference_s": round(wall["slow"], 3),
           "ratio": round(wall["slow"] / wall["fast"], 2), "default_predictor_cpu_s": round(cpu["fast"], 3),
           "reference_cpu_s": round(cpu["slow"], 3)}
    print(markdown_table(["search (default predictor)", "candidates", "wall s (median)", "CPU s (median)", "rounds"],
                         [["proxies batched", n, out["default_predictor_s"], out["default_predictor_cpu_s"], len(fast)],
                          ["proxies one network at a time", n, out["reference_s"], out["reference_cpu_s"],
                           len(slow)]]))
    print(f"ratio {out['ratio']}x; default predictor {out['default_predictor_s']} s for {n} candidates "
          f"(target <= 5 s): {'met' if out['default_predictor_s'] <= 5 else 'not met'}")
    return out


def maps(space, device, n_batched: int, n_single: int) -> dict:
    torch.manual_seed(0)
    sd = ResNet(teacher_arch(space), space, space.num_classes).eval().state_dict()
    archs = sample_unique(space, n_batched, np.random.default_rng(0))
    functional_maps(archs[:8], sd, space, space.num_classes, 0, run=MapRun(device=device))  # warm-up
    t0 = time.perf_counter()
    functional_maps(archs, sd, space, space.num_classes, 0, run=MapRun(256, device))
    batched = n_batched / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for a in archs[:n_single]:
        functional_map_single(a, sd, space, space.num_classes, 0)
    single = n_single / (time.perf_counter() - t0)
    print(f"functional maps, batched (batch 256): {batched:,.0f} candidates/s ({n_batched} candidates)")
    print(f"functional maps, one network each:    {single:,.0f} candidates/s ({n_single} candidates)")
    return {"maps_batched_per_s": round(batched, 1), "maps_single_per_s": round(single, 1),
            "maps_ratio": round(batched / single, 2)}


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--space", default=str(ROOT / "configs/space/cpu.yaml"))
    ap.add_argument("--data-root", default=str(ROOT / "data"), help="folder of the built-in glyph datasets")
    args = ap.parse_args()
    if args.repeats is None:
        args.repeats = 1
    device = setup(args)
    space = load_space(args.space)
    n_search, n_batched, n_single = (1000, 512, 32) if args.quick else (10000, 2048, 128)
    print(f"space '{space.name}', torch threads {torch.get_num_threads()}, device {device}")
    numbers = {"candidates": n_search, **default_predictor(args, device, n_search),
               **maps(space, device, n_batched, n_single)}
    s = numbers["default_predictor_s"]
    numbers.update(target="default_predictor_s <= 5", met=None if s is None else s <= 5.0)
    emit_json("search", args, device, **numbers)


if __name__ == "__main__":
    main()
