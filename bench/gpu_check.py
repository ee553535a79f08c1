"""The GPU check: one command on a CUDA machine with no network (``bash script/gpu_check.sh``).

    python bench/gpu_check.py                         # CUDA present: the whole check, <= 6 min on an H200
    python bench/gpu_check.py --dry                   # as on a machine without a GPU: tiny CPU-side parts
    python bench/gpu_check.py --data-root data --out bench/results/gpu-check-2026-12-04.json

Parts, in order, each timed (a part that fails is recorded with its error and the check goes on):

1. ``data``: the glyph family under ``--data-root`` (``python -m dass.data glyphs ... workers=16``;
   present datasets are skipped). Dry mode: ``glyphs/hebrew`` only.
2. ``tests``: ``pytest -q -m "not slow" tests`` with CUDA present: passed / failed and the names of
   the failures. Not in dry mode (a test runs the dry mode).
3. ``search``: the demo's search (glyphs/hebrew, the shipped teacher and default predictor, half the
   teacher's MACs) of 10,000 candidates on the GPU and on the CPU: ``search_10k_s`` is the stage's own
   scoring time (``seconds`` of ``top.json``) on the GPU, ``search_10k_s_cpu`` the same on the CPU.
   Dry mode: 50 candidates, CPU only.
4. ``kd``: the demo's KD of the pick (``configs/kd/cpu.yaml``, seed 1) on the device.
5. ``throughput``: ``kd_train_many`` of K copies of the space's middle student (every stage at the
   middle depth and width) for K = 1 and 8, paper profile (64 px, ResNet42 teacher, batch 64) and cpu
   profile (16 px, batch 128), on glyphs/latin (2,160 train images): one untimed warm-up epoch, then
   ``--epochs`` timed epochs (student-images/s = K x images stepped / wall seconds, validation at
   the end included), then one epoch under ``torch.profiler``: ``gpu_busy`` = the union of the CUDA
   kernels' time intervals / the profiled wall, ``launches_per_step`` = CUDA kernels / train steps
   (validation's kernels included). Teacher: randomly initialised (throughput does not depend on
   its weights). Dry mode: 8 noise images of 4 classes, batch 8, 1 epoch, no profile.
6. ``labels``: 24 of the shipped database's glyphs/hebrew students (every other one of its 50 by
   MACs), KD-trained by the database builder's own student phase (``run_group``, the cpu database's
   recipe, KD seed 1, lockstep 8) on the device; ``labels_gpu_vs_cpu_spearman`` = Spearman of their
   ``best_acc`` against the shipped (CPU, seed 1) labels, beside ``labels_cpu_seed_vs_seed_spearman``
   = Spearman of the shipped seed-1 and seed-2 labels of the same students. (The shipped labels were
   trained with the float32 teachers; the shipped teachers are their float16 copies, whose KD labels
   differ from the float32 ones by less than seed noise: docs/DATABASE.md.) Dry mode: 4 students,
   1 epoch.
7. ``benchmarks``: ``bench_kd.py``, ``bench_lockstep.py`` and ``bench_db.py --quick`` with
   ``--device cuda``: exit code and their ``check:`` lines. Not in dry mode (tests/benchmarks/test_bench.py
   runs their ``--quick`` on the CPU).
8. ``evaluation``: the demo's evaluation (every baseline and both shipped predictors on the 8
   meta-test tasks) on the device; its proxy scores are computed into a scratch cache (the shipped
   cache holds the CPU's: the device type is part of the key). Last, as the most expendable. Not in
   dry mode.

``--budget-s`` bounds the parts together: a part that would start after it is spent is skipped
(``skipped (time budget spent)``), a subprocess still running at it is stopped (``failed``).

``db_students_per_gpu_hour_paper`` is derived, not a build: the paper-profile K = 8 rate x 3,600 /
(50 KD epochs x 2,160 train images), the students per hour of a lockstep-8 database worker on one
GPU for a task the glyphs' size. Ends with one table (metric, value, target) and writes the JSON
(``--out``; default ``bench/results/gpu-check-<YYYY-MM-DD>.json``, ``...-dry.json`` in dry mode).
Exit code: 0 when every part ran (the targets of issue 31 are reported, not enforced), 1 when a
part failed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import ROOT, config_path, device_name

PY = sys.executable
TARGETS = {  # issue 31's acceptance lines
    "kd paper K=1": 10_000, "kd paper K=8": 25_000, "kd cpu K=8": 40_000, "gpu_busy paper": 0.85,
    "search_10k_s": 5.0, "db_students_per_gpu_hour_paper": 500}
PAPER_DB_EPOCHS, GLYPH_TRAIN_IMAGES = 50, 2160


SUB_ENV: dict = {}  # dry mode: one thread per subprocess (a CPU machine is usually shared)


def sh(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the repository root with the ``SUB_ENV`` settings."""
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 1),
                          env={**os.environ, "PYTHONPATH": str(ROOT), **SUB_ENV})


def need_ok(p: subprocess.CompletedProcess, what: str) -> str:
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-8:])
        raise RuntimeError(f"{what} exited {p.returncode}: {tail}")
    return p.stdout


# ------------------------------------------------------------------------------ parts

def part_data(ctx) -> dict:
    only = ["only=[hebrew]"] if ctx.dry else []
    out = need_ok(sh([PY, "-m", "dass.data", "glyphs", "--config", ROOT / "configs/data/glyphs.yaml", "--quiet",
                      f"out_root={ctx.data_root}", f"workers={ctx.workers}", *only], ctx.left()), "dass.data glyphs")
    return {"summary": out.strip()[-400:]}


def part_tests(ctx) -> dict:
    p = sh([PY, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", "tests"], ctx.left())
    text = p.stdout + p.stderr
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|errors?|skipped)", text.splitlines()[-1] if text else "")}
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.M)
    return {"passed": counts.get("passed", 0), "failed": counts.get("failed", 0) + counts.get("error", 0)
            + counts.get("errors", 0), "skipped": counts.get("skipped", 0), "failures": failures,
            "exit_code": p.returncode}


def _search(ctx, device: str, run_dir: Path) -> dict:
    need_ok(sh([PY, "-m", "dass.search", "--config", config_path("search", "cpu"), "dataset=glyphs/hebrew",
                f"data_root={ctx.data_root}", f"teacher={ctx.teacher}", f"predictor={ctx.predictor}",
                f"run_dir={run_dir}", "budget.macs=0.5", f"pool_size={ctx.pool}",
                f"device={device}", "progress=false"], ctx.left()), f"dass.search on {device}")
    return json.loads((run_dir / "top.json").read_text())


def part_search(ctx) -> dict:
    out = {"candidates": ctx.pool}
    devices = ["cpu"] if ctx.dry else ["cuda", "cpu"]
    for dev in devices:
        t0 = time.perf_counter()
        top = _search(ctx, dev, ctx.work / f"search_{dev}")
        out[dev] = {"seconds": top["seconds"], "wall_s": time.perf_counter() - t0,
                    "pick": top["top"][0]["arch"] if "top" in top else None}
    ctx.search_dir = ctx.work / f"search_{devices[0]}"
    return out


def part_kd(ctx) -> dict:
    run = ctx.work / "kd"
    extra = ["kd_recipe.epochs=1"] if ctx.dry else []
    need_ok(sh([PY, "-m", "dass.kd", "--config", config_path("kd", "cpu"), f"teacher={ctx.teacher}",
                "dataset=glyphs/hebrew", f"data_root={ctx.data_root}", f"student_file={ctx.search_dir / 'top.json'}",
                f"run_dir={run}", "seeds=[1]", f"device={ctx.device}", "progress=false", *extra], ctx.left()), "dass.kd")
    rows = (run / "results.csv").read_text().strip().splitlines()
    return {"results_csv": rows}


def part_evaluation(ctx) -> dict:
    run = ctx.work / "evaluate"
    pred = ROOT / "assets/cpu/predictors"
    need_ok(sh([PY, "-m", "dass.evaluation", "--config", config_path("evaluation", "cpu"), f"db={ROOT / 'assets/cpu/db'}",
                f"data_root={ctx.data_root}", f"predictors={{dass: {pred / 'dass/best.pt'}, meta_nas_A: {pred / 'meta_nas_A/best.pt'}}}",
                f"run_dir={run}", f"device={ctx.device}", "progress=false", f"proxy.cache={ctx.work / 'proxy_cache'}"],
               ctx.left()), "dass.evaluation")
    return {"summary": json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else None}


def _kernel_busy(prof) -> tuple[float, int]:
    """(microseconds covered by at least one CUDA kernel, number of kernels) of a profile."""
    from torch.autograd import DeviceType
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == DeviceType.CUDA)
    covered, end = 0.0, -1.0
    for a, b in spans:
        if b <= end:
            continue
        covered += b - max(a, end)
        end = b
    return covered, len(spans)


def kd_rate(profile: str, k: int, ctx) -> dict:
    """Student-images/s of ``kd_train_many`` with K copies of the middle student (see part 5)."""
    from bench_data import load_or_synthesise
    from bench_kd import middle_arch
    from dass import config as cfgmod
    from dass.space import build, load_space, teacher_arch
    from dass.train import KDRecipe, KDSetting, kd_train_many
    space = load_space(config_path("space", profile))
    recipe_d = cfgmod.read_yaml(config_path("kd", profile))["kd_recipe"]
    if ctx.dry:  # 8 noise images of 4 classes at 32 px: one step at batch 8
        from dass.data import ImageArrays
        rng = np.random.default_rng(0)
        train = test = ImageArrays(rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), np.arange(8) % 4, 4, "dry")
        recipe_d = {**recipe_d, "batch_size": 8, "eval_batch_size": 8}
    else:
        train = load_or_synthesise("glyphs/latin", str(ctx.data_root), "train")
        test = load_or_synthesise("glyphs/latin", str(ctx.data_root), "test")
    torch.manual_seed(0)
    teacher_sd = build(teacher_arch(space), space, train.num_classes).state_dict()
    archs = [middle_arch(space)] * k

    def run(epochs: int):
        recipe = cfgmod.from_dict(KDRecipe, {**recipe_d, "epochs": epochs, "eval_every": epochs}, where=profile)
        if ctx.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        kd_train_many(archs, KDSetting(space, teacher_sd, train, test, recipe, device=ctx.device), seed=1)
        if ctx.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, epochs * (len(train) // recipe.batch_size), recipe.batch_size

    epochs = 1 if ctx.dry else ctx.epochs
    if not ctx.dry:
        run(1)  # warm-up: cuDNN autotuning, allocator, lazy imports
    seconds, steps, batch = run(epochs)
    row = {"profile": profile, "k": k, "student_images_per_s": k * steps * batch / seconds, "gpu_busy": None,
           "launches_per_step": None, "epochs": epochs, "steps": steps, "batch_size": batch, "seconds": seconds,
           "student": str(archs[0]), "train_images": len(train)}
    if ctx.device == "cuda":
        from torch.profiler import ProfilerActivity, profile as tprofile
        with tprofile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            wall, steps1, _ = run(1)
        busy_us, kernels = _kernel_busy(prof)
        row.update(gpu_busy=busy_us / 1e6 / wall, launches_per_step=kernels / steps1, profiled_wall_s=wall)
    return row


def part_throughput(ctx) -> dict:
    rows = []
    for profile in ("paper", "cpu"):
        for k in (1, 8):
            rows.append(kd_rate(profile, k, ctx))
            r = rows[-1]
            print(f"  kd {profile} K={k}: {r['student_images_per_s']:,.0f} student-images/s"
                  + (f", GPU busy {r['gpu_busy']:.0%}, {r['launches_per_step']:.0f} launches/step" if r["gpu_busy"] else ""),
                  flush=True)
    return {"rows": rows}


def part_labels(ctx) -> dict:
    from scipy.stats import spearmanr

    from dass import config as cfgmod
    from dass.database import plan as P
    from dass.database.runners import run_group
    from dass.database.config import DatabaseConfig
    from dass.io import safe_torch_load
    n_students = 4 if ctx.dry else 24
    cfg = cfgmod.load(DatabaseConfig, config_path("database", "cpu"), [
        f"data_root={ctx.data_root}", f"work_dir={ctx.work / 'labels'}", f"out={ctx.work / 'labels/db'}",
        "subset_tasks=[]", f"tasks=[{{dataset: glyphs/hebrew, split: meta_test, teacher: {ctx.teacher}}}]",
        "label_seeds={meta_test: [1]}", f"device={ctx.device}", "lockstep=8",
        *(["kd_recipe.epochs=1"] if ctx.dry else [])])
    shipped = safe_torch_load(ROOT / "assets/cpu/db/glyphs-hebrew.pt")
    st = shipped["students"]
    order = np.argsort(np.asarray(st["macs"]), kind="stable")
    chosen = order[::2][:n_students] if not ctx.dry else order[:: max(1, len(order) // n_students)][:n_students]
    want = {json.dumps(st["arch"][i], sort_keys=True): int(i) for i in chosen}
    tasks = P.build_tasks(cfg)
    jobs = [j for j in P.plan_students(cfg, tasks)["glyphs-hebrew"] if json.dumps(j.arch, sort_keys=True) in want]
    if len(jobs) != len(want):
        raise RuntimeError(f"the builder sampled {len(jobs)} of the {len(want)} shipped students chosen")
    for group in P.group_jobs({"glyphs-hebrew": jobs}, cfg.lockstep):
        run_group(cfg, group, tasks)
    res = {json.dumps(r["arch"], sort_keys=True): r for r in P.finished_results(cfg, jobs)}
    idx = [want[a] for a in sorted(want)]
    gpu = np.array([res[a]["best_acc"] for a in sorted(want)])
    s1, s2 = (np.asarray(st["best_acc_seeds"])[idx, c] for c in (0, 1))
    return {"students": len(idx), "device": ctx.device, "epochs": cfg.kd_recipe.epochs,
            "spearman_device_vs_shipped_seed1": float(spearmanr(gpu, s1)[0]),
            "spearman_shipped_seed1_vs_seed2": float(spearmanr(s1, s2)[0]),
            "mean_abs_device_vs_shipped_seed1": float(np.abs(gpu - s1).mean()),
            "mean_abs_shipped_seed1_vs_seed2": float(np.abs(s1 - s2).mean()),
            "best_acc_device": gpu.tolist(), "best_acc_shipped_seed1": s1.tolist()}


def part_benchmarks(ctx) -> dict:
    out = {}
    for script, args in (("bench_kd.py", ["--profiles", "cpu,paper"]), ("bench_lockstep.py", []),
                         ("bench_db.py", ["--quick"])):
        p = sh([PY, ROOT / "bench" / script, "--device", "cuda", "--data-root", ctx.data_root, *args], ctx.left())
        text = p.stdout + p.stderr
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        out[script] = {"exit_code": p.returncode, "checks": re.findall(r"^check: .*$", text, flags=re.M),
                       "json": json.loads(lines[-1]) if lines else None}
    bad = [s for s, r in out.items() if r["exit_code"] != 0]
    if bad:
        raise RuntimeError(f"benchmarks failed: {bad}: " + "; ".join(c for s in bad for c in out[s]["checks"][-2:]))
    return out


# ------------------------------------------------------------------------------ driver

class Ctx:
    def __init__(self, args, dry: bool):
        self.dry, self.device = dry, "cpu" if dry else "cuda"
        self.data_root = Path(args.data_root).resolve()
        self.workers, self.epochs, self.budget = args.workers, args.epochs, args.budget_s
        self.pool = 50 if dry else 10_000
        self.work = Path(tempfile.mkdtemp(prefix="gpu_check_", dir=args.work_root))
        self.teacher = ROOT / "assets/cpu/teachers/glyphs-hebrew/teacher.pt"
        self.predictor = ROOT / "assets/cpu/predictors/dass/best.pt"
        self.search_dir = self.work / "search_cpu"
        self.t0 = time.perf_counter()

    def spent(self) -> bool:
        return time.perf_counter() - self.t0 > self.budget - 20

    def left(self) -> float:
        """Seconds left of the budget (at least 30: a part is never started with nothing)."""
        return max(30.0, self.budget - (time.perf_counter() - self.t0))


def commit() -> str:
    if os.environ.get("DASS_COMMIT"):
        return os.environ["DASS_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def summary_rows(rec: dict) -> list[list[str]]:
    def fmt(v, spec=",.0f"):
        return "-" if v is None else format(v, spec)
    rows = []
    t = rec["tests"]
    rows.append(["tests (not slow)", "-" if t is None else f"{t['passed']} passed, {t['failed']} failed", "0 failed"])
    for r in rec["kd"]:
        key = f"kd {r['profile']} K={r['k']}"
        busy = "" if r["gpu_busy"] is None else f", busy {r['gpu_busy']:.0%}, {r['launches_per_step']:.0f} launches/step"
        tgt = TARGETS.get(key)
        rows.append([key + " (student-images/s)", fmt(r["student_images_per_s"]) + busy,
                     ">= " + format(tgt, ",") if tgt else "-"])
    rows.append(["search 10k (s), device / cpu", f"{fmt(rec['search_10k_s'], '.1f')} / {fmt(rec['search_10k_s_cpu'], '.1f')}", "<= 5"])
    rows.append(["db students per GPU-hour, paper (derived)", fmt(rec["db_students_per_gpu_hour_paper"]), ">= 500"])
    rows.append(["labels Spearman, device vs CPU (CPU seed vs seed)",
                 f"{fmt(rec['labels_gpu_vs_cpu_spearman'], '.3f')} ({fmt(rec['labels_cpu_seed_vs_seed_spearman'], '.3f')})",
                 ">= the CPU seed-vs-seed figure"])
    for name, p in rec["parts"].items():
        rows.append([f"part {name}", f"{p['status']} in {p['seconds']:.0f} s" + (f": {p['error'][:120]}" if p.get("error") else ""), "-"])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry", action="store_true", help="the CPU-side parts at tiny sizes, as without a GPU")
    ap.add_argument("--data-root", default=str(ROOT / "data"))
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/gpu-check-<date>[-dry].json)")
    ap.add_argument("--workers", type=int, default=16, help="processes of the glyph generator")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per throughput row")
    ap.add_argument("--budget-s", type=float, default=330.0, help="time limit of the subprocess parts together")
    ap.add_argument("--work-root", default=None, help="where the scratch folder goes (default: the system's tmp)")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out")
    args = ap.parse_args(argv)
    os.chdir(ROOT)  # the configs name their files relative to the repository
    cuda = torch.cuda.is_available()
    dry = args.dry or not cuda
    if not cuda:
        print("gpu_check: no CUDA GPU on this machine: dry mode (the CPU-side parts at tiny sizes)", flush=True)
    elif args.dry:
        print("gpu_check: --dry: the CPU-side parts at tiny sizes", flush=True)
    if dry:
        torch.set_num_threads(1)
        SUB_ENV["OMP_NUM_THREADS"] = "1"
    ctx = Ctx(args, dry)
    parts = [("data", part_data), ("tests", part_tests), ("search", part_search), ("kd", part_kd),
             ("throughput", part_throughput), ("labels", part_labels), ("benchmarks", part_benchmarks),
             ("evaluation", part_evaluation)]
    gpu_only = {"tests", "evaluation", "benchmarks"}
    skip = {s for s in args.skip.split(",") if s}
    done, status = {}, {}
    for name, fn in parts:
        if name in skip or (dry and name in gpu_only):
            status[name] = {"status": "skipped" + (" (dry mode)" if name not in skip else ""), "seconds": 0.0}
            continue
        if not dry and ctx.spent():
            status[name] = {"status": "skipped (time budget spent)", "seconds": 0.0}
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            done[name] = fn(ctx)
            status[name] = {"status": "ok", "seconds": time.perf_counter() - t0}
        except Exception as e:  # noqa: BLE001 - recorded, reported, exit code 1
            status[name] = {"status": "failed", "seconds": time.perf_counter() - t0, "error": f"{type(e).__name__}: {e}"}
            print(f"   failed: {status[name]['error'][:2000]}", flush=True)
    kd_rows = done.get("throughput", {}).get("rows", [])
    k8 = next((r for r in kd_rows if r["profile"] == "paper" and r["k"] == 8), None)
    search, labels = done.get("search", {}), done.get("labels")
    date = time.strftime("%Y-%m-%d", time.gmtime())
    rec = {"device": device_name(torch.device(ctx.device)), "mode": "dry" if dry else "gpu", "commit": commit(),
           "date": date, "torch": torch.__version__, "cuda": torch.version.cuda,
           "tests": None if "tests" not in done else {k: done["tests"][k] for k in ("passed", "failed", "skipped", "failures")},
           "kd": [{k: r[k] for k in ("profile", "k", "student_images_per_s", "gpu_busy", "launches_per_step",
                                     "epochs", "steps", "batch_size", "seconds", "student")} for r in kd_rows],
           "search_10k_s": search.get("cuda", search.get("cpu", {})).get("seconds") if not dry else None,
           "search_10k_s_cpu": search.get("cpu", {}).get("seconds"), "search_candidates": ctx.pool,
           "db_students_per_gpu_hour_paper": None if k8 is None else
           k8["student_images_per_s"] * 3600 / (PAPER_DB_EPOCHS * GLYPH_TRAIN_IMAGES),
           "db_students_per_gpu_hour_paper_basis": "paper-profile K=8 student-images/s x 3600 / "
                                                   f"({PAPER_DB_EPOCHS} epochs x {GLYPH_TRAIN_IMAGES} images)",
           "labels_gpu_vs_cpu_spearman": None if labels is None else labels["spearman_device_vs_shipped_seed1"],
           "labels_cpu_seed_vs_seed_spearman": None if labels is None else labels["spearman_shipped_seed1_vs_seed2"],
           "labels": labels, "demo": {k: done.get(k) for k in ("search", "kd", "evaluation")},
           "benchmarks": done.get("benchmarks"), "parts": status, "targets": TARGETS,
           "wall_s": time.perf_counter() - ctx.t0}
    out = Path(args.out) if args.out else ROOT / "bench/results" / f"gpu-check-{date}{'-dry' if dry else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    from dass.io import atomic_write_json
    atomic_write_json(out, rec)
    from common import markdown_table
    print(markdown_table(["metric", f"value ({rec['device']}{', dry mode' if dry else ''})", "target"], summary_rows(rec)))
    print(f"gpu_check: {rec['wall_s']:.0f} s; written {out}")
    return 1 if any(p["status"] == "failed" for p in status.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
