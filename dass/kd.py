"""``python -m dass.kd --config configs/kd/cpu.yaml teacher=<teacher.pt> dataset=<name> ...``: KD-train
one student from a teacher, for one or several seeds.

The student is given by exactly one of:

* ``student: {depths: [...], widths: [[...], ...]}`` in the YAML (or ``student.depths=[...]``),
* ``student_file=<search result JSON>``: a JSON object whose ``top`` is a list of
  ``{"arch": {"depths", "widths"}, ...}``; ``student_index`` picks one (default 0),
* ``candidates_file=<file>`` + ``index``: a JSON list of architectures (``{"depths", "widths"}``, or
  ``{"arch": {...}}``) or a ``.pt`` dict whose ``archs`` is such a list.

Writes into ``run_dir`` (default ``<runs_root>/kd/<dataset>/<arch key>``): ``config.yaml``,
``kd.log``, per seed ``seed<k>/{best.pt,last.pt,metrics.json}`` (running the same command again
resumes unfinished seeds) and ``results.csv`` (one row per finished seed in the folder). Under
``torchrun`` each seed is trained data-parallel and rank 0 writes.
"""
from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .cli import load_config, make_parser, run_main, setup_logging, setup_run_dir
from .data.registry import load_dataset
from .errors import DassError
from .io import atomic_write_json, read_json, write_csv
from .space import REMAPS, Arch, SpaceConfig, load_space, validate
from .space.arch import read_candidates_file
from .teacher import load_teacher
from .train.distributed import barrier, init_distributed, shutdown
from .train.recipe import KDRecipe
from .train.trainer import check_data, kd_train
from .train_teacher import run_name

log = logging.getLogger("dass.kd")
CSV_FIELDS = ("seed", "best_acc", "final_acc", "final_loss", "wall_s", "macs", "params", "arch", "dataset", "teacher")


@dataclass
class StudentSpec:
    depths: list[int]  # blocks per stage
    widths: list[list[int]]  # per stage, the width of each block


@dataclass
class KDRunConfig:
    teacher: str = ""              # teacher checkpoint (teacher.pt or the original model_best.pth.tar)
    dataset: str = ""              # registry name; its classes must match the teacher's
    data_root: str = "data"  # folder of the built-in datasets
    space: str = ""                # space profile YAML; needed for checkpoints that record none
    runs_root: str = "runs"  # parent of the default run folder
    run_dir: str = ""              # default <runs_root>/kd/<dataset>/<arch key>
    student: StudentSpec | None = None  # the student's depths and widths
    student_file: str = ""  # search result (top.json) holding the student
    student_index: int = 0  # entry of student_file's top list (0 = the best)
    candidates_file: str = ""  # JSON/.pt list of architectures holding the student
    index: int = 0  # entry of candidates_file
    seeds: list[int] = field(default_factory=lambda: [1])  # KD seeds, one run each
    remap: str = "copy_paste_first"  # initialisation of the student from the teacher (copy_paste_first ...)
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    progress: bool = True  # progress bars
    recipe: KDRecipe = field(default_factory=KDRecipe)  # KD recipe


def _pick(items, i: int, what: str, path) -> dict:
    if not isinstance(items, list) or not items:
        raise DassError(f"{path}: expected a non-empty list of {what}")
    if not 0 <= i < len(items):
        raise DassError(f"{path}: index {i} out of range (it holds {len(items)} {what})")
    return items[i]


def resolve_student(cfg: KDRunConfig) -> Arch:
    """The one architecture named by ``student`` / ``student_file`` / ``candidates_file``."""
    given = [k for k, v in (("student", cfg.student), ("student_file", cfg.student_file),
                            ("candidates_file", cfg.candidates_file)) if v]
    if len(given) != 1:
        raise DassError("give exactly one of student: {depths, widths}, student_file=<json> or "
                        f"candidates_file=<json|pt> (got {', '.join(given) or 'none'})")
    if cfg.student:
        return Arch.from_dict({"depths": cfg.student.depths, "widths": cfg.student.widths})
    if cfg.student_file:
        data = read_json(cfg.student_file)
        if not isinstance(data, dict) or "top" not in data:
            raise DassError(f"{cfg.student_file}: a search result needs a key 'top'")
        entry = _pick(data["top"], cfg.student_index, "entries in 'top'", cfg.student_file)
        if not isinstance(entry, dict) or "arch" not in entry:
            raise DassError(f"{cfg.student_file}: top[{cfg.student_index}] has no 'arch'")
        return Arch.from_dict(entry["arch"])
    path = Path(cfg.candidates_file)
    items, _ = read_candidates_file(path)
    entry = _pick(items, cfg.index, "architectures", path)
    return Arch.from_dict(entry["arch"] if isinstance(entry, dict) and "arch" in entry else entry)


def _row(seed: int, m: dict, dataset: str, teacher: str) -> dict:
    arch = Arch.from_dict(m["arch"])
    return {"seed": seed, **{k: m[k] for k in CSV_FIELDS[1:7]}, "arch": str(arch),
            "dataset": dataset, "teacher": teacher}


def main(args) -> int:
    cfg = load_config(KDRunConfig, args)
    for key in ("teacher", "dataset"):
        if not getattr(cfg, key):
            raise DassError(f"no {key} given ({key}=...)")
    if not cfg.seeds:
        raise DassError("seeds is empty")
    if cfg.remap not in REMAPS:
        raise DassError(f"unknown remap '{cfg.remap}' (known: {', '.join(REMAPS)})")
    arch = resolve_student(cfg)
    space_hint: SpaceConfig | None = load_space(cfg.space) if cfg.space else None
    _, teacher_sd, meta = load_teacher(cfg.teacher, space=space_hint)
    space = meta["space"]
    validate(arch, space)
    # arrays keep their stored size (the loader resizes on the device, as the database build does);
    # an image folder has no stored size, so it is read at the space's
    size = space.image_size if cfg.dataset.startswith("folder:") else None
    train = load_dataset(cfg.dataset, cfg.data_root, "train", size)
    test = load_dataset(cfg.dataset, cfg.data_root, "test", size)
    check_data(train, test, meta["num_classes"])
    run_dir = Path(cfg.run_dir or Path(cfg.runs_root) / "kd" / run_name(cfg.dataset) / arch.key())
    ctx = init_distributed(cfg.device)
    try:
        if ctx.is_main:
            setup_run_dir(run_dir, cfg, "kd")
        else:
            setup_logging()
        barrier(ctx)
        log.info("student %s (%s) of space '%s' from teacher %s on %s, seeds %s, device %s x%d",
                 arch, arch.key(), space.name, cfg.teacher, cfg.dataset, cfg.seeds, ctx.device, ctx.world_size)
        results = {}
        for seed in cfg.seeds:
            seed_dir = run_dir / f"seed{seed}"
            if ctx.is_main:
                seed_dir.mkdir(parents=True, exist_ok=True)
            barrier(ctx)
            m = kd_train(arch, space, teacher_sd, train, test, cfg.recipe, seed, remap=cfg.remap, run_dir=seed_dir,
                         progress=cfg.progress, ctx=ctx)
            results[seed] = m
            if ctx.is_main:
                atomic_write_json(seed_dir / "metrics.json", {"seed": seed, "dataset": cfg.dataset,
                                                              "teacher": cfg.teacher, **m})
                log.info("seed %d: best %.2f%% final %.2f%% loss %.4f (%.1f s)", seed, m["best_acc"],
                         m["final_acc"], m["final_loss"], m["wall_s"])
        if ctx.is_main:
            write_results(run_dir)
            finals = [results[s]["final_acc"] for s in cfg.seeds]
            print(json.dumps({"run_dir": str(run_dir), "arch": arch.to_dict(),
                              "final_acc": {str(s): results[s]["final_acc"] for s in cfg.seeds},
                              "best_acc": {str(s): results[s]["best_acc"] for s in cfg.seeds},
                              "final_acc_mean": statistics.fmean(finals),
                              "final_acc_std": statistics.stdev(finals) if len(finals) > 1 else 0.0}))
    finally:
        shutdown(ctx)
    return 0


def write_results(run_dir: Path) -> None:
    """``results.csv``: one row per finished seed found in ``run_dir``, ordered by seed."""
    rows = []
    for f in run_dir.glob("seed*/metrics.json"):
        m = read_json(f)
        rows.append(_row(int(m["seed"]), m, m["dataset"], m["teacher"]))
    write_csv(run_dir / "results.csv", sorted(rows, key=lambda r: r["seed"]), list(CSV_FIELDS))


def _parser():
    return make_parser("python -m dass.kd", "Knowledge-distil one student from a teacher (one or more seeds).",
                       KDRunConfig)


if __name__ == "__main__":
    run_main(main, parser=_parser())
