"""The latency model of each profile's space on this machine (dass/space/latency.py): predicted vs
measured latency of random students, for the lookup table and the regression.

    nice python bench/latency_model.py --threads 1                     # cpu and paper, 50 students each
    python bench/latency_model.py --threads 1 --quick                  # cpu, 8 students, a smoke run

For each profile (``configs/space/<profile>.yaml``) and model, the table is built afresh into a
temporary folder (``build_s``: the one-time measuring cost a first search pays), then ``--students``
students sampled from the space (seed 123, none of those the models are built or calibrated on by
construction of the seed) are measured (batch 1, ``--threads``, CPU; least of ``rounds`` medians of
``repeats`` passes, see :func:`dass.space.latency.measure_ms`) and compared with both models'
predictions: Spearman and MAPE (mean absolute percentage error, ``|pred - measured| / measured``).
The students are then measured a second time: ``remeasured_*`` compares the two measurements, the
noise ceiling of the machine at that time (no model can agree with a measurement better than a
second measurement does, on average).
Acceptance (issue 29): Spearman >= 0.9 and MAPE <= 15 %. ``loadavg_1min`` (in ``machine``) says how
busy the machine was: on a shared machine a measurement is slowed down by the other jobs, which the
minimum over rounds only partly removes.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import base_parser, check, config_path, emit_json, markdown_table, setup  # noqa: E402
from dass.correlation import spearman  # noqa: E402
from dass.space import LatencyConfig, load_space, sample_unique  # noqa: E402
from dass.space.latency import latency_model, measure_arch  # noqa: E402

SPEARMAN_TARGET, MAPE_TARGET = 0.9, 15.0


def evaluate(profile: str, students: int, models: list[str], cfg_kw: dict) -> list[dict]:
    space = load_space(config_path("space", profile))
    k = space.num_classes
    with tempfile.TemporaryDirectory() as cache:
        built = {}
        for model in models:
            cfg = LatencyConfig(model=model, cache_dir=cache, **cfg_kw)
            t0 = time.perf_counter()
            built[model] = (latency_model(space, k, cfg), time.perf_counter() - t0)
    archs = sample_unique(space, students, np.random.default_rng(123))
    measure_cfg = LatencyConfig(**cfg_kw)
    measured = np.array([measure_arch(a, space, k, measure_cfg) for a in archs])
    again = np.array([measure_arch(a, space, k, measure_cfg) for a in archs])   # the noise ceiling
    noise = {"remeasured_spearman": round(spearman(again, measured), 4),
             "remeasured_mape_pct": round(float(100 * np.mean(np.abs(again - measured) / measured)), 2)}
    rows = []
    for model, (m, build_s) in built.items():
        pred = np.array([m.predict_ms(a) for a in archs])
        mape = float(100 * np.mean(np.abs(pred - measured) / measured))
        rows.append({"profile": profile, "model": model, "students": students, "build_s": round(build_s, 1),
                     "table_entries": len(m.data.get("table", {})), "spearman": round(spearman(pred, measured), 4),
                     "mape_pct": round(mape, 2), "measured_ms_min": round(float(measured.min()), 4),
                     "measured_ms_median": round(float(np.median(measured)), 4),
                     "measured_ms_max": round(float(measured.max()), 4), **noise,
                     "met": bool(spearman(pred, measured) >= SPEARMAN_TARGET and mape <= MAPE_TARGET)})
    return rows


def main() -> None:
    ap = base_parser(__doc__)
    ap.add_argument("--profiles", default="cpu,paper", help="comma-separated space profiles")
    ap.add_argument("--students", type=int, default=None, help="random students measured (default 50; quick 8)")
    ap.add_argument("--models", default="lut,regression", help="comma-separated: lut, regression")
    ap.add_argument("--passes", type=int, default=None, help="timed passes per round (default 5; quick 3)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="wall: elapsed time; cpu: the thread's CPU time (needs --threads 1)")
    args = ap.parse_args()
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    if args.repeats is None:
        args.repeats = 2 if args.quick else 10     # rounds (the least of their medians is kept)
    device = setup(args)
    if device.type != "cpu":
        print("note: the latency model is measured on the CPU here (latency.device=cpu)")
    students = args.students or (8 if args.quick else 50)
    profiles = ["cpu"] if args.quick else args.profiles.split(",")
    cfg_kw = {"warmup": args.warmup, "rounds": args.repeats,
              "repeats": args.passes or (3 if args.quick else 5), "threads": args.threads, "clock": args.clock}
    rows = [r for p in profiles for r in evaluate(p, students, args.models.split(","), cfg_kw)]
    headers = ["profile", "model", "students", "build_s", "table_entries", "spearman", "mape_pct",
               "remeasured_spearman", "remeasured_mape_pct", "measured_ms_min", "measured_ms_median",
               "measured_ms_max", "met"]
    print(markdown_table(headers, [[r[h] for h in headers] for r in rows]))
    check(all(np.isfinite([r["spearman"], r["mape_pct"]]).all() for r in rows), "finite Spearman and MAPE")
    emit_json("latency_model", args, device, rows=rows, target={"spearman": SPEARMAN_TARGET, "mape_pct": MAPE_TARGET},
              met=all(r["met"] for r in rows), settings=cfg_kw)


if __name__ == "__main__":
    main()
