"""The KD stage (``python -m dass.kd --config configs/kd/cpu.yaml teacher=<teacher.pt> dataset=<name> ...``;
:func:`run` is its public entry): KD-train one student from a teacher, for one or several seeds.

The student is given by exactly one of:

* ``student: {depths: [...], widths: [[...], ...]}`` in the YAML (or ``student.depths=[...]``),
* ``student_file=<search result JSON>``: a JSON object whose ``top`` is a list of
  ``{"arch": {"depths", "widths"}, ...}``; ``student_index`` picks one (default 0),
* ``candidates_file=<file>`` + ``index``: a JSON list of architectures (``{"depths", "widths"}``, or
  ``{"arch": {...}}``) or a ``.pt`` dict whose ``archs`` is such a list.

Writes into ``run_dir`` (default ``<runs_root>/kd/<dataset>/<arch key>-<identity>``, see
:mod:`dass.runid`: a folder holding a run of another teacher, data, student or recipe is refused):
``identity.json``, ``config.yaml``, ``kd.log`` and the student's KD runs in the one pick-folder layout of
:mod:`dass.kd.picks`: per seed ``seed<k>/{best.pt,last.pt,metrics.json}`` (running the same command again
resumes unfinished seeds) and ``results.csv`` (one row per finished seed in the folder). Under
``torchrun`` each seed is trained data-parallel and rank 0 writes.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .. import config as cfgmod
from .. import hashing, runid
from ..cli import setup_run_dir_of_rank
from ..data.registry import dataset_key, load_dataset
from ..errors import DassError
from ..io import read_json
from ..space import REMAPS, Arch, SpaceConfig, load_space, validate
from ..space.arch import read_candidates_file
from ..teacher.checkpoint import load_teacher
from ..train.distributed import barrier, init_distributed, shutdown
from ..train.trainer import check_data
from .config import KDRunConfig
from .picks import PickSetting, train_pick_folders

log = logging.getLogger("dass.kd")


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


def run(cfg: KDRunConfig) -> dict:
    """KD-train (or resume) the student of ``cfg`` for each of its seeds; returns the summary line
    (``run_dir``, ``arch``, per seed ``final_acc`` / ``best_acc``, their mean and std) that it also
    prints. Under ``torchrun`` only rank 0 has the summary (other ranks get ``{}``)."""
    cfg.check()
    if cfg.remap not in REMAPS:
        raise DassError(f"unknown remap '{cfg.remap}' (known: {', '.join(REMAPS)})")
    arch = resolve_student(cfg)
    space_hint: SpaceConfig | None = load_space(cfg.space) if cfg.space else None
    _, teacher_sd, meta = load_teacher(cfg.teacher, space=space_hint)
    space = meta["space"]
    try:
        validate(arch, space)
    except DassError as e:
        raise DassError(f"student {arch} is not in space '{space.name}' of teacher {cfg.teacher}: {e}") from None
    # arrays keep their stored size (the loader resizes on the device, as the database build does);
    # an image folder has no stored size, so it is read at the space's
    size = space.image_size if cfg.dataset.startswith("folder:") else None
    train = load_dataset(cfg.dataset, cfg.data_root, "train", size)
    test = load_dataset(cfg.dataset, cfg.data_root, "test", size)
    check_data(train, test, meta["num_classes"])
    ident = runid.identity("kd", cfg, teacher=hashing.file_hash(cfg.teacher),
                           arch=arch.to_dict(), space=cfgmod.to_dict(space),
                           data={"train": hashing.dataset_hash(train), "test": hashing.dataset_hash(test)})
    run_dir = Path(cfg.run_dir or Path(cfg.runs_root) / "kd" / dataset_key(cfg.dataset) / f"{arch.key()}-{runid.short(ident)}")
    runid.claim(run_dir, ident)
    dist = init_distributed(cfg.device)
    summary = {}
    try:
        setup_run_dir_of_rank(dist.is_main, run_dir, cfg, "kd", identity=ident)
        barrier(dist)
        log.info("student %s (%s) of space '%s' from teacher %s on %s, seeds %s, device %s x%d",
                 arch, arch.key(), space.name, cfg.teacher, cfg.dataset, cfg.seeds, dist.device, dist.world_size)
        setting = PickSetting(space, teacher_sd, train, test, cfg.kd_recipe, cfg.remap, cfg.device, dataset=cfg.dataset,
                              teacher=cfg.teacher, progress=cfg.progress, ctx=dist)
        [pick] = train_pick_folders([arch], [run_dir], setting, cfg.seeds)   # the run folder is the pick's folder
        if dist.is_main:
            summary = {"run_dir": str(run_dir), "arch": arch.to_dict(),
                       "final_acc": {str(s): a for s, a in zip(cfg.seeds, pick["final_accs"])},
                       "best_acc": {str(s): a for s, a in zip(cfg.seeds, pick["best_accs"])},
                       "final_acc_mean": pick["final_acc"], "final_acc_std": pick["final_acc_std"]}
            print(json.dumps(summary))
    finally:
        shutdown(dist)
    return summary

