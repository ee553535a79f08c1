"""KD of picked students: the one routine, used by the kd stage, the pipeline and the evaluation.

One folder layout. The picks of a run lie in ``<out>/<rank>-<arch key>/`` (:func:`pick_dir`; the
kd stage's run folder is the folder of its one pick); a pick's folder holds per seed
``seed<k>/{best.pt,last.pt,metrics.json}`` and ``results.csv`` (one row per finished seed), and with
``scratch_baseline`` per seed ``scratch-seed<k>/``: the same architecture trained from random
weights on the labels alone (remap ``random_init``, ``alpha`` 1), the recipe otherwise the same, so
the same number of steps. A (pick, seed) whose ``metrics.json`` exists is not retrained; an
interrupted one resumes from its ``last.pt``. The picks of one seed train in lockstep (one teacher
forward per batch; the same results as one at a time, :func:`dass.train.kd_train_many`).
"""
from __future__ import annotations

import dataclasses
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_write_json, read_json, write_csv
from ..space import Arch
from ..train.distributed import barrier
from ..train.kd_setting import KDSetting
from ..train.lockstep import kd_train_many

log = logging.getLogger("dass.kd")

CSV_FIELDS = ("seed", "best_acc", "final_acc", "final_loss", "wall_s", "macs", "params", "arch", "dataset", "teacher")
SCRATCH_REMAP = "random_init"


@dataclass
class PickSetting(KDSetting):
    """What every pick of one KD run shares (:class:`dass.train.lockstep.KDSetting`), and the names of
    its dataset and teacher that each ``metrics.json`` records."""

    dataset: str = ""
    teacher: str = ""


def pick_dir(out, rank: int, arch: Arch) -> Path:
    return Path(out) / f"{rank}-{arch.key()}"


def seed_dir(folder, seed: int, scratch: bool = False) -> Path:
    return Path(folder) / f"{'scratch-' if scratch else ''}seed{seed}"


def scratch_setting(setting: PickSetting) -> PickSetting:
    """``setting`` for the from-scratch baseline: random initial weights, labels only (alpha 1)."""
    return dataclasses.replace(setting, remap=SCRATCH_REMAP, recipe=dataclasses.replace(setting.recipe, alpha=1.0))


def _main(setting: PickSetting) -> bool:
    return setting.ctx is None or setting.ctx.is_main


def _train_seed(archs: list[Arch], folders: list[Path], setting: PickSetting, seed: int, scratch: bool) -> None:
    """Train, with ``seed``, every pick of ``folders`` whose seed folder holds no ``metrics.json``."""
    if setting.ctx is not None:
        barrier(setting.ctx)   # every rank sees the metrics.json that rank 0 wrote before
    runs = [seed_dir(f, seed, scratch) for f in folders]
    todo = [i for i, r in enumerate(runs) if not (r / "metrics.json").is_file()]
    if not todo:
        return
    what = "from scratch" if scratch else "KD"
    log.info("%s seed %d: %d student(s)%s", what, seed, len(todo), " in lockstep" if len(todo) > 1 else "")
    if _main(setting):
        for i in todo:
            runs[i].mkdir(parents=True, exist_ok=True)
    if setting.ctx is not None:
        barrier(setting.ctx)
    s = scratch_setting(setting) if scratch else setting
    results = kd_train_many([archs[i] for i in todo], s, seed, run_dirs=[runs[i] for i in todo])
    if _main(setting):
        for i, m in zip(todo, results):
            atomic_write_json(runs[i] / "metrics.json", {"seed": seed, "dataset": s.dataset, "teacher": s.teacher, **m})
            log.info("%s %s seed %d: best %.2f%% final %.2f%% loss %.4f (%.1f s)", what, archs[i], seed,
                     m["best_acc"], m["final_acc"], m["final_loss"], m["wall_s"])


def _row(m: dict) -> dict:
    return {"seed": int(m["seed"]), **{k: m[k] for k in CSV_FIELDS[1:7]}, "arch": str(Arch.from_dict(m["arch"])),
            "dataset": m["dataset"], "teacher": m["teacher"]}


def write_results(folder: Path) -> None:
    """``results.csv``: one row per finished (KD) seed found in the pick folder ``folder``, by seed."""
    rows = [_row(read_json(f)) for f in Path(folder).glob("seed*/metrics.json")]
    write_csv(Path(folder) / "results.csv", sorted(rows, key=lambda r: r["seed"]), list(CSV_FIELDS))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def pick_summary(folder: Path, seeds: list[int], scratch_baseline: bool = False) -> dict:
    """A trained pick: ``best_acc`` / ``final_acc`` (means over ``seeds``), ``final_acc_std``, the
    per-seed values, ``wall_s`` (sum); with ``scratch_baseline`` the same of the scratch runs
    (``scratch_best_acc``, ``scratch_final_acc``, ``scratch_final_acc_std``)."""
    ms = [read_json(seed_dir(folder, s) / "metrics.json") for s in seeds]
    final, final_std = _mean_std([m["final_acc"] for m in ms])
    out = {"run_dir": str(folder), "best_acc": statistics.fmean(m["best_acc"] for m in ms), "final_acc": final,
           "final_acc_std": final_std, "best_accs": [m["best_acc"] for m in ms],
           "final_accs": [m["final_acc"] for m in ms], "wall_s": sum(m["wall_s"] for m in ms)}
    if scratch_baseline:
        sc = [read_json(seed_dir(folder, s, scratch=True) / "metrics.json") for s in seeds]
        s_final, s_std = _mean_std([m["final_acc"] for m in sc])
        out.update(scratch_best_acc=statistics.fmean(m["best_acc"] for m in sc), scratch_final_acc=s_final,
                   scratch_final_acc_std=s_std, scratch_wall_s=sum(m["wall_s"] for m in sc))
    return out


def train_pick_folders(archs: list[Arch], folders: list[Path], setting: PickSetting, seeds: list[int],
                       scratch_baseline: bool = False) -> list[dict]:
    """KD-train (or resume) each ``archs[i]`` into ``folders[i]`` (a pick folder, layout above) with
    every seed; returns :func:`pick_summary` of each (on a torchrun rank other than 0: ``{}`` each)."""
    for seed in seeds:
        _train_seed(archs, folders, setting, seed, scratch=False)
        if scratch_baseline:
            _train_seed(archs, folders, setting, seed, scratch=True)
    if not _main(setting):
        return [{} for _ in folders]
    for f in folders:
        write_results(f)
    return [pick_summary(f, seeds, scratch_baseline) for f in folders]


def kd_picks(picks: list[tuple[int, Arch]], setting: PickSetting, seeds: list[int], out,
             scratch_baseline: bool = False) -> list[dict]:
    """KD-train every ``(rank, arch)`` of ``picks`` into ``<out>/<rank>-<arch key>/`` with every seed;
    one :func:`pick_summary` per pick, in order, with its ``rank`` and ``arch`` (dict)."""
    folders = [pick_dir(out, rank, arch) for rank, arch in picks]
    summaries = train_pick_folders([a for _, a in picks], folders, setting, seeds, scratch_baseline)
    return [{"rank": rank, "arch": arch.to_dict(), **s} for (rank, arch), s in zip(picks, summaries)]
