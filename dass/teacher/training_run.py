"""The teacher stage (``python -m dass.teacher --config configs/teacher/cpu.yaml dataset=glyphs/latin``):
train a teacher; :func:`run` is its public entry.

Writes into ``run_dir`` (default ``<runs_root>/teacher/<dataset>-<identity>``; a folder holding a run
of other data, space, recipe or seed is refused, see :mod:`dass.runid`): ``identity.json``,
``config.yaml``, ``teacher.log``,
``last.pt`` / ``best.pt`` (training checkpoints; running the same command again resumes),
``metrics.json`` and ``teacher.pt`` (format in :mod:`dass.teacher.checkpoint`; its weights are those of the
epoch with the best test top-1, as the original's ``model_best``). Under ``torchrun`` the run is
data-parallel and rank 0 writes.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .. import config as cfgmod
from .. import hashing, runid
from ..cli import setup_run_dir_of_rank
from ..data.arrays import ImageArrays
from ..data.registry import dataset_key, load_dataset
from ..io import atomic_write_json
from ..space import load_space
from ..train.distributed import barrier, init_distributed, shutdown
from ..train.trainer import check_data, fit_teacher
from .checkpoint import save_teacher
from .config import TeacherRunConfig

log = logging.getLogger("dass.teacher")


def run(cfg: TeacherRunConfig, data: tuple[ImageArrays, ImageArrays] | None = None) -> dict:
    """Train (or resume) the teacher of ``cfg``; returns its metrics with ``teacher`` (the path of
    ``teacher.pt``). ``data``: the (train, test) splits when the caller has read them already."""
    cfg.check()
    space = load_space(cfg.space)
    if data is None:
        # arrays keep their stored size (the loader resizes on the device, as the database build does);
        # an image folder has no stored size, so it is read at the space's
        size = space.image_size if cfg.dataset.startswith("folder:") else None
        data = (load_dataset(cfg.dataset, cfg.data_root, "train", size),
                load_dataset(cfg.dataset, cfg.data_root, "test", size))
    train, test = data
    check_data(train, test)
    data_id = {"train": hashing.dataset_hash(train), "test": hashing.dataset_hash(test)}
    ident = runid.identity("teacher", cfg, space=cfgmod.to_dict(space), data=data_id)
    run_dir = Path(cfg.run_dir or Path(cfg.runs_root) / "teacher" / f"{dataset_key(cfg.dataset)}-{runid.short(ident)}")
    runid.claim(run_dir, ident)
    dist = init_distributed(cfg.device)
    try:
        setup_run_dir_of_rank(dist.is_main, run_dir, cfg, "teacher", identity=ident)
        barrier(dist)
        log.info("teacher of space '%s' on %s (%d train / %d test images, %d classes), device %s x%d",
                 space.name, cfg.dataset, len(train), len(test), train.num_classes, dist.device, dist.world_size)
        state_dict, metrics = fit_teacher(space, train, test, cfg.teacher_recipe, cfg.seed, run_dir=run_dir,
                                            progress=cfg.progress, ctx=dist)
        line = {"teacher": str(run_dir / "teacher.pt"),
                **{k: metrics[k] for k in ("best_acc", "final_acc", "final_loss", "best_epoch", "wall_s",
                                           "macs", "params")}}
        if dist.is_main:
            save_teacher(run_dir / "teacher.pt", state_dict, space, train.num_classes, cfg.dataset, metrics,
                         recipe=cfg.teacher_recipe, seed=cfg.seed, data=data_id)
            atomic_write_json(run_dir / "metrics.json", {"dataset": cfg.dataset, "seed": cfg.seed, **metrics})
            log.info("done: %s", line)
            print(json.dumps({k: line[k] for k in ("teacher", "best_acc", "final_acc", "final_loss", "best_epoch",
                                                   "wall_s")}))
    finally:
        shutdown(dist)
    return line
