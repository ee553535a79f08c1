"""Your own dataset in one command: teacher -> search -> KD -> report.

``python -m dass.pipeline --config configs/pipeline/cpu.yaml dataset=<name>`` (or :func:`run`):

1. **teacher**: load ``teacher=<checkpoint>`` (its accuracy measured on the test split when the file
   records none), or train the teacher of the predictor's space with ``teacher_recipe``
   (:func:`dass.teacher.training_run.run`);
2. **search**: adapt the predictor on the teacher and score candidates under the budget
   (:func:`dass.search.searcher.run`); budgets given as fractions (<= 1) are taken of the teacher's
   MACs/parameters;
3. **kd**: KD-train the ``top_k`` best candidates with every seed of ``seeds`` (the students of one
   seed in lockstep, one teacher forward per batch; each pick's folder is a ``dass.kd`` run folder);
4. **report**: ``report.md``, ``picks.csv``, ``stages.csv`` and the plots under ``plots/``
   (:mod:`dass.pipeline.report`).

Everything goes under ``run_dir``. Each of the first three stages records its identity (what its
result depends on: data and checkpoint hashes, settings) in ``<stage>/stage_identity.json`` when it starts
and its result in ``<stage>/stage.json`` when it ends: a rerun skips finished stages whose identity
is unchanged, resumes interrupted training from its checkpoints, and redoes (after emptying the
folder) a stage whose identity changed, and with it every later stage.

All inputs are checked before any training: the dataset, the predictor, a given teacher, and the
budget against the smallest student of the space (one-line errors, exit code 2).

The run folder is claimed before anything in it changes (:mod:`dass.runid`): its ``identity.json``
names the dataset and the hash of the files read from it (:func:`dass.hashing.dataset_hash`, the
stages' data identity). A folder holding another dataset's run, a run of an older version, or
files the pipeline did not write (any non-empty folder without ``identity.json``) is refused;
so is an input (teacher, predictor, dataset) inside the run folder, which a rerun may replace. A
run holds ``run_dir/.lock`` while it works: a second run on the same folder meanwhile gets one
error. A stage folder is emptied for a redo only when its ``stage_identity.json`` proves it a
stage output of this pipeline with another identity, after every input has been read.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import config as cfgmod
from .. import runid
from ..cli import setup_logging, setup_run_dir
from ..data.registry import dataset_key, load_dataset
from ..device import resolve_device
from ..errors import DassError
from ..export.config import ExportConfig
from ..export.exporter import run as export_run
from ..hashing import dataset_hash, file_sha256
from ..io import atomic_write_json, read_json, safe_torch_load
from ..kd.picks import PickSetting, kd_picks
from ..predictor.checkpoint import load_predictor
from ..search.budget import feasible_budget
from ..search.config import BudgetConfig, SearchConfig
from ..search.searcher import check_teacher_space, run as search_run
from ..space import REMAPS, Arch, macs, params, teacher_arch
from ..task import Task
from ..teacher.checkpoint import checked_accuracy, load_teacher, save_teacher
from ..teacher.config import TeacherRunConfig
from ..teacher.training_run import run as teacher_run
from ..train.trainer import check_data
from .config import PipelineConfig
from .report import write_report

log = logging.getLogger("dass.pipeline")
PIPELINE_STAGES = ("teacher", "search", "kd")


def default_run_dir(dataset: str) -> Path:
    return Path("runs") / "pipeline" / dataset_key(dataset)


def predictor_file(path) -> Path:
    """``best.pt`` itself, or the one inside a meta-training run folder."""
    p = Path(path)
    if p.is_dir():
        p = p / "best.pt"
    if not p.is_file():
        raise DassError(f"predictor not found: {p}")
    return p


def predictor_quality(pred_path: Path) -> dict:
    """What the predictor's run folder measured on its meta-test tasks (``metrics.json`` beside
    ``best.pt``): mean Spearman and, when recorded, the mean absolute error of its predicted
    accuracy in points; empty when there is no such file."""
    f = pred_path.parent / "metrics.json"
    d = read_json(f) if f.is_file() else {}

    def number(*keys):
        v = d
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    found = {"meta_test_spearman": number("meta_test_mean", "spearman"),
             "meta_test_pred_acc_mae": number("pred_acc_mae_mean", "meta_test")}
    return {k: v for k, v in found.items() if v is not None}


def _normal(obj):
    """JSON round trip (tuples -> lists), so identities compare equal to what was stored."""
    return json.loads(json.dumps(obj, default=str))


class Stages:
    """Run stages under ``run_dir/<name>/``, skipping those finished with the same identity."""

    def __init__(self, run_dir: Path, logfile: Path):
        self.run_dir, self.logfile = run_dir, logfile
        self.records: dict[str, dict] = {}

    def run(self, name: str, identity: dict, fn: Callable[[Path], dict],
            still_valid: Callable[[dict, Path], bool] = lambda result, folder: True) -> dict:
        """``fn(folder)``'s result, or the recorded one when the stage finished with ``identity``
        and ``still_valid(result, folder)`` holds (e.g. its output files are still there)."""
        folder = self.run_dir / name
        identity = _normal(identity)
        done = folder / "stage.json"
        if done.is_file():
            rec = read_json(done)
            if (isinstance(rec, dict) and rec.get("identity") == identity and isinstance(rec.get("result"), dict)
                    and still_valid(rec["result"], folder)):
                log.info("stage %s: finished before with the same inputs, skipped", name)
                self.records[name] = {**rec, "skipped": True}
                return rec["result"]
        started = folder / "stage_identity.json"  # (identity.json is the entry's own, dass.runid)
        if started.is_file():
            if read_json(started) != identity or done.is_file():
                log.info("stage %s: inputs changed since the last run (or its output is gone), redoing it", name)
                shutil.rmtree(folder)   # proven ours (check_stage_folders), inputs already read
        elif folder.exists() and any(folder.iterdir()):
            raise DassError(f"{folder}: not written by a pipeline stage (no stage_identity.json); move it away")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(started, identity)
        t0 = time.perf_counter()
        result = _normal(fn(folder))
        setup_logging(self.logfile)  # sub-stages attach their own log files
        rec = {"stage": name, "identity": identity, "result": result,
               "seconds": round(time.perf_counter() - t0, 3)}
        atomic_write_json(done, rec)
        log.info("stage %s: done in %.1f s", name, rec["seconds"])
        self.records[name] = {**rec, "skipped": False}
        return result


def check_stage_folders(run_dir: Path) -> None:
    """Refuse a run folder whose stage folder holds files but no ``stage_identity.json``: it was not
    written by a pipeline stage, and a redo would delete it."""
    for name in PIPELINE_STAGES:
        folder = run_dir / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise DassError(f"{folder}: not a stage folder written by dass.pipeline; move it away")
        if folder.is_dir() and not (folder / "stage_identity.json").is_file() and any(folder.iterdir()):
            raise DassError(f"{folder}: holds files but no stage_identity.json (not written by a pipeline "
                            f"stage): nothing was changed; move it away or give another run_dir")


def _inside(path, folder: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def check_inputs_outside(cfg: PipelineConfig, run_dir: Path, pred_path: Path) -> None:
    """Refuse inputs inside the run folder: a stage redo may replace them before they are read."""
    given = {"teacher": cfg.teacher, "predictor": str(pred_path)}
    if cfg.dataset.startswith(("folder:", "npy:")):
        given["dataset"] = cfg.dataset.split(":", 1)[1]
    for key, path in given.items():
        if path and _inside(path, run_dir):
            hint = (" (leave teacher= empty to reuse the teacher this run folder trained)" if key == "teacher" else "")
            raise DassError(f"{key}={path} lies inside run_dir {run_dir}, whose stage folders a rerun may "
                            f"replace: copy it out of the run folder first{hint}")


def _load_data(cfg: PipelineConfig, image_size: int):
    # arrays keep their stored size (the loader resizes on the device); an image folder is read at
    # the space's size, as dass.teacher and dass.kd read it
    size = image_size if cfg.dataset.startswith("folder:") else None
    train, test = (load_dataset(cfg.dataset, cfg.data_root, s, size) for s in ("train", "test"))
    check_data(train, test)
    return train, test


def _teacher_given(cfg: PipelineConfig, space, num_classes: int, test, device, folder: Path, data_id: dict) -> dict:
    """The given checkpoint, with its accuracy measured here when it records none (then a copy
    holding that accuracy is written to ``folder/teacher.pt`` for the search to read)."""
    task = Task(space, cfg.dataset, cfg.data_root, cfg.teacher, num_classes, device=device).use_arrays(test=test)
    _, sd, meta = task.teacher()
    recorded = recorded_teacher_accuracy(cfg, meta, recorded_data(cfg.teacher), data_id)
    path = Path(cfg.teacher)
    if recorded is None:
        acc = task.teacher_accuracy()
        log.info("teacher accuracy on the test split: %.2f%%", acc)
        path = folder / "teacher.pt"
        save_teacher(path, sd, space, num_classes, cfg.dataset, {**(meta.get("metrics") or {}), "best_acc": acc},
                     recipe=meta["recipe"], seed=meta["seed"], data=data_id)
    else:
        acc = recorded
    arch = teacher_arch(space)
    return {"teacher": str(path), "best_acc": acc, "macs": macs(arch, space, num_classes),
            "params": params(arch, space, num_classes), "trained_here": False}


def recorded_data(teacher) -> dict | None:
    """The data identity a teacher checkpoint records (``data``: the database build writes it), or None."""
    ck = safe_torch_load(teacher)
    return ck.get("data") if isinstance(ck, dict) and isinstance(ck.get("data"), dict) else None


def recorded_teacher_accuracy(cfg: PipelineConfig, meta: dict, data: dict | None = None,
                              data_id: dict | None = None) -> float | None:
    """The accuracy a given teacher records, checked (a number in [0, 100]), when it is one of this
    dataset (the checkpoint names ``cfg.dataset`` and, where it records its data identity ``data``,
    that is ``data_id``, the data read now); None, so that it is measured here, when it records none
    or its accuracy came from other data."""
    metrics = meta.get("metrics")
    if not isinstance(metrics, dict) or metrics.get("best_acc") is None:
        return None
    acc = checked_accuracy(metrics["best_acc"], f"{cfg.teacher}: metrics.best_acc")
    if meta.get("dataset") != cfg.dataset or (data is not None and data_id is not None and data != data_id):
        log.info("teacher %s records its accuracy on other data (%r): measured here", cfg.teacher, meta.get("dataset"))
        return None
    return acc


def _teacher_there(result: dict, folder: Path, given: str) -> bool:
    """A finished teacher stage still counts when its checkpoint is there: this stage folder's
    ``teacher.pt`` or the given ``teacher=`` file (a copied run folder does not read the
    original's); else it is redone."""
    path = result.get("teacher")
    if not isinstance(path, str) or not Path(path).is_file():
        return False
    return any(Path(path).resolve() == Path(p).resolve() for p in (folder / "teacher.pt", given) if p)


def _teacher_trained(cfg: PipelineConfig, space, data, folder: Path) -> dict:
    cfgmod.save(space, folder / "space.yaml")
    tcfg = TeacherRunConfig(dataset=cfg.dataset, data_root=cfg.data_root, space=str(folder / "space.yaml"),
                            run_dir=str(folder), seed=cfg.teacher_seed, device=cfg.device, progress=cfg.progress,
                            teacher_recipe=cfg.teacher_recipe)
    line = teacher_run(tcfg, data)
    return {**line, "trained_here": True}


def _search(cfg: PipelineConfig, pred_path: Path, teacher: dict, budget: dict, folder: Path) -> dict:
    scfg = SearchConfig(teacher=teacher["teacher"], predictor=str(pred_path), run_dir=str(folder), dataset=cfg.dataset,
                        data_root=cfg.data_root, latency=cfg.latency,
                        budget=BudgetConfig(budget["max_macs"], budget["max_params"], budget.get("max_latency_ms")),
                        strategy=cfg.strategy, pool_size=cfg.pool_size, evolution=cfg.evolution, top_k=cfg.top_k,
                        seed=cfg.search_seed, device=cfg.device, progress=cfg.progress)
    return search_run(scfg)


def _kd(cfg: PipelineConfig, space, teacher: dict, picks: list[dict], data, folder: Path) -> dict:
    """Every pick with every seed (:func:`dass.kd.picks.kd_picks`: ``<folder>/<rank>-<arch key>/``)."""
    _, sd, _ = load_teacher(teacher["teacher"], space=space)
    setting = PickSetting(space, sd, *data, cfg.kd_recipe, cfg.remap, cfg.device, dataset=cfg.dataset,
                          teacher=teacher["teacher"], progress=cfg.progress)
    return {"picks": kd_picks([(p["rank"], Arch.from_dict(p["arch"])) for p in picks], setting, cfg.seeds, folder,
                              scratch_baseline=cfg.scratch_baseline)}


def run(cfg: PipelineConfig) -> dict:
    """Run (or resume) the pipeline; prints where the report is and returns ``{run_dir, teacher, budget,
    search, kd, stages}``."""
    cfg.check()
    if cfg.remap not in REMAPS:
        raise DassError(f"unknown remap '{cfg.remap}' (known: {', '.join(REMAPS)})")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    # --- every input checked before any work
    pred_path = predictor_file(cfg.predictor)
    pred = load_predictor(pred_path, device="cpu")
    space = pred.space
    data = _load_data(cfg, space.image_size)
    num_classes = data[0].num_classes
    if cfg.teacher:
        check_teacher_space(cfg.teacher, space, pred_path)
        recorded_teacher_accuracy(cfg, load_teacher(cfg.teacher, space=space, num_classes=num_classes)[2])
    budget = feasible_budget(cfg.budget, space, num_classes, cfg.latency).as_dict()   # before any training
    recipes = [("kd_recipe", cfg.kd_recipe)] + ([] if cfg.teacher else [("teacher_recipe", cfg.teacher_recipe)])
    for name, recipe in recipes:
        if recipe.batch_size > len(data[0]):
            raise DassError(f"{name}.batch_size={recipe.batch_size} is more than the {len(data[0])} train images "
                            f"of {cfg.dataset}: give at most {len(data[0])}")
    run_dir = Path(cfg.run_dir or default_run_dir(cfg.dataset))
    check_inputs_outside(cfg, run_dir, pred_path)
    data_id = {"train": dataset_hash(data[0]), "test": dataset_hash(data[1])}
    ident = runid.identity("pipeline", {"dataset": cfg.dataset}, data=data_id)
    runid.claim(run_dir, ident, exclusive=True)   # before anything in it changes
    check_stage_folders(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DassError(f"cannot create run folder {run_dir}: {e.strerror}") from None
    with runid.locked(run_dir, "dass.pipeline run"):
        runid.claim(run_dir, ident, exclusive=True)   # again under the lock: another run may have claimed it
        check_stage_folders(run_dir)
        checked = Checked(data, data_id, pred_path, space, num_classes, budget, device)
        return _run_claimed(cfg, run_dir, ident, checked)


@dataclass(frozen=True)
class Checked:
    """What :func:`run` read and checked before it claimed the run folder."""

    data: tuple            # (train, test) ImageArrays of the dataset
    data_id: dict          # their content hashes ({"train", "test"})
    pred_path: Path        # the predictor checkpoint
    space: object          # the predictor's (and the teacher's) SpaceConfig
    num_classes: int
    budget: dict           # the resolved, feasible budget (feasible_budget(...).as_dict())
    device: object         # the resolved torch device


def _run_claimed(cfg: PipelineConfig, run_dir: Path, ident: dict, checked: Checked) -> dict:
    c = checked
    data, data_id, pred_path, space, num_classes, budget, device = (c.data, c.data_id, c.pred_path, c.space,
                                                                    c.num_classes, c.budget, c.device)
    setup_run_dir(run_dir, cfg, "pipeline", identity=ident)
    logfile = run_dir / "pipeline.log"
    log.info("dataset %s (%d classes, %d train / %d test images), predictor %s (space '%s'), budget %s",
             cfg.dataset, num_classes, len(data[0]), len(data[1]), pred_path, space.name, budget)
    stages = Stages(run_dir, logfile)
    # --- teacher
    if cfg.teacher:
        t_ident = {"given": str(cfg.teacher), "sha256": file_sha256(cfg.teacher), "data": data_id}
        teacher = stages.run("teacher", t_ident,
                             lambda f: _teacher_given(cfg, space, num_classes, data[1], device, f, data_id),
                             still_valid=lambda r, f: _teacher_there(r, f, cfg.teacher))
    else:
        t_ident = {"dataset": cfg.dataset, "data": data_id, "space": cfgmod.to_dict(space),
                   "recipe": cfgmod.to_dict(cfg.teacher_recipe), "seed": cfg.teacher_seed}
        teacher = stages.run("teacher", t_ident, lambda f: _teacher_trained(cfg, space, data, f),
                             still_valid=lambda r, f: _teacher_there(r, f, cfg.teacher))
    teacher_sha = file_sha256(teacher["teacher"])
    # --- search
    s_ident = {"teacher": teacher_sha, "predictor": file_sha256(pred_path), "budget": budget,
               "strategy": cfg.strategy, "pool_size": cfg.pool_size, "evolution": cfgmod.to_dict(cfg.evolution),
               "seed": cfg.search_seed, "top_k": cfg.top_k, "data": data_id,
               **({"latency": {**cfgmod.to_dict(cfg.latency), "cache_dir": ""}} if "max_latency_ms" in budget else {})}
    search = stages.run("search", s_ident, lambda f: _search(cfg, pred_path, teacher, budget, f),
                        still_valid=lambda r, _: isinstance(r.get("top"), list) and all(
                            isinstance(p, dict) and {"rank", "arch"} <= p.keys() for p in r["top"]))
    if not cfg.train:  # train: false: search only (no KD, export or report); the picks are search/top.json
        return {"run_dir": str(run_dir), "teacher": teacher, "budget": budget, "search": search, "kd": None}
    # --- KD of the picks
    picks = search["top"]
    k_ident = {"teacher": teacher_sha, "picks": [p["arch"] for p in picks], "seeds": cfg.seeds,
               "recipe": cfgmod.to_dict(cfg.kd_recipe), "remap": cfg.remap, "data": data_id,
               **({"scratch_baseline": True} if cfg.scratch_baseline else {})}
    kd = stages.run("kd", k_ident, lambda f: _kd(cfg, space, teacher, picks, data, f),
                    still_valid=lambda r, _: isinstance(r.get("picks"), list))
    result = {"run_dir": str(run_dir), "dataset": cfg.dataset, "num_classes": num_classes,
              "train_size": len(data[0]), "test_size": len(data[1]), "predictor": str(pred_path),
              "predictor_quality": predictor_quality(pred_path),
              "space": space.name, "teacher": teacher, "budget": budget, "budget_given": cfgmod.to_dict(cfg.budget),
              "search": search, "kd": kd, "stages": stages.records, "seeds": cfg.seeds,
              "kd_epochs": cfg.kd_recipe.epochs}
    if cfg.export:  # quick (seconds): redone on every run, so that it always shows the current rank-1 pick
        best = min(kd["picks"], key=lambda p: p["rank"])
        result["export"] = export_run(ExportConfig(run=best["run_dir"], out=str(run_dir / "export"),
                                                   format=list(cfg.export), data_root=cfg.data_root))
    t0 = time.perf_counter()
    write_report(run_dir, result)
    log.info("report written in %.1f s: %s", time.perf_counter() - t0, run_dir / "report.md")
    print(f"report: {run_dir}/report.md")
    return result
