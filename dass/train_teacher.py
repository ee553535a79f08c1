"""``python -m dass.train_teacher --config configs/teacher/cpu.yaml dataset=glyphs/latin``: train a teacher.

Writes into ``run_dir`` (default ``<runs_root>/teacher/<dataset>``): ``config.yaml``, ``teacher.log``,
``last.pt`` / ``best.pt`` (training checkpoints; running the same command again resumes),
``metrics.json`` and ``teacher.pt`` (format in :mod:`dass.teacher`; its weights are those of the
epoch with the best test top-1, as the original's ``model_best``). Under ``torchrun`` the run is
data-parallel and rank 0 writes.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import config as cfgmod
from .cli import load_config, make_parser, run_main, setup_logging, setup_run_dir
from .data.arrays import ImageArrays
from .data.registry import load_dataset
from .errors import DassError
from .io import atomic_torch_save, atomic_write_json
from .space import load_space, teacher_arch
from .train.distributed import barrier, init_distributed, shutdown
from .train.recipe import TeacherRecipe
from .train.trainer import check_data, train_teacher

log = logging.getLogger("dass.train_teacher")


@dataclass
class TeacherRunConfig:
    dataset: str = ""                       # registry name, e.g. glyphs/latin, tiny_imagenet-3, cub
    data_root: str = "data"  # folder of the built-in datasets
    space: str = "configs/space/cpu.yaml"   # space profile (YAML) fixing the teacher network
    runs_root: str = "runs"  # parent of the default run folder
    run_dir: str = ""                       # default <runs_root>/teacher/<dataset>
    seed: int = 0  # seed of the initialisation and the batches
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    progress: bool = True  # progress bars
    recipe: TeacherRecipe = field(default_factory=TeacherRecipe)  # teacher recipe


def run_name(dataset: str) -> str:
    """A folder name for a dataset name ('glyphs/latin' -> 'glyphs-latin')."""
    return dataset.replace("/", "-").replace(":", "_").strip("-_.") or "dataset"


def run(cfg: TeacherRunConfig, data: tuple[ImageArrays, ImageArrays] | None = None) -> dict:
    """Train (or resume) the teacher of ``cfg``; returns its metrics with ``teacher`` (the path of
    ``teacher.pt``). ``data``: the (train, test) splits when the caller has read them already."""
    if not cfg.dataset:
        raise DassError("no dataset given (dataset=<name>, e.g. dataset=glyphs/latin)")
    space = load_space(cfg.space)
    if data is None:
        # arrays keep their stored size (the loader resizes on the device, as the database build does);
        # an image folder has no stored size, so it is read at the space's
        size = space.image_size if cfg.dataset.startswith("folder:") else None
        data = (load_dataset(cfg.dataset, cfg.data_root, "train", size),
                load_dataset(cfg.dataset, cfg.data_root, "test", size))
    train, test = data
    check_data(train, test)
    run_dir = Path(cfg.run_dir or Path(cfg.runs_root) / "teacher" / run_name(cfg.dataset))
    ctx = init_distributed(cfg.device)
    try:
        if ctx.is_main:
            setup_run_dir(run_dir, cfg, "teacher")
        else:
            setup_logging()
        barrier(ctx)
        log.info("teacher of space '%s' on %s (%d train / %d test images, %d classes), device %s x%d",
                 space.name, cfg.dataset, len(train), len(test), train.num_classes, ctx.device, ctx.world_size)
        state_dict, metrics = train_teacher(space, train, test, cfg.recipe, cfg.seed, run_dir=run_dir,
                                            progress=cfg.progress, ctx=ctx)
        line = {"teacher": str(run_dir / "teacher.pt"),
                **{k: metrics[k] for k in ("best_acc", "final_acc", "final_loss", "best_epoch", "wall_s",
                                           "macs", "params")}}
        if ctx.is_main:
            atomic_torch_save({"state_dict": state_dict, "space": cfgmod.to_dict(space),
                               "arch": teacher_arch(space).to_dict(), "num_classes": train.num_classes,
                               "dataset": cfg.dataset, "metrics": metrics}, run_dir / "teacher.pt")
            atomic_write_json(run_dir / "metrics.json", {"dataset": cfg.dataset, "seed": cfg.seed, **metrics})
            log.info("done: %s", line)
            print(json.dumps({k: line[k] for k in ("teacher", "best_acc", "final_acc", "final_loss", "best_epoch",
                                                   "wall_s")}))
    finally:
        shutdown(ctx)
    return line


def main(args) -> int:
    run(load_config(TeacherRunConfig, args))
    return 0


def _parser():
    return make_parser("python -m dass.train_teacher", "Train the teacher of a space profile on a dataset.",
                       TeacherRunConfig)


if __name__ == "__main__":
    run_main(main, parser=_parser())
