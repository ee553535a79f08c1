"""A tiny database for fast tests: a real (untrained) teacher of a tiny space, task files in the
``dass-db-v1`` format (:mod:`dass.database.format`) and, optionally, small image datasets.

Accuracies are synthetic: ``best_acc = 30 + 40 * macs / teacher macs + N(0, 2)`` and ``final_acc =
best_acc - U(0, 3)``, so bigger students are usually better, as in real databases.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dass import teacher
from dass.config import to_dict
from dass.data.arrays import ImageArrays, write_split
from dass.database.format import FORMAT_V1 as FORMAT, save_task_db
from dass.space import (SpaceConfig, build, functional_maps, macs, onehot, onehot_batch, params, sample_unique,
                        teacher_arch)

TINY = SpaceConfig(name="tiny", stage_widths=[4, 8, 8, 16], depths=[1, 2], width_mults=[0.5, 1.0], image_size=8)


def tiny_teacher_state(space: SpaceConfig, num_classes: int, seed: int) -> dict:
    """The teacher of ``space`` with random weights and random (non-trivial) BN parameters/statistics."""
    torch.manual_seed(seed)
    net = build(teacher_arch(space), space, num_classes)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return {k: v.clone() for k, v in net.state_dict().items()}


def save_teacher(path, sd: dict, space: SpaceConfig, num_classes: int, dataset: str, best_acc: float) -> Path:
    """A teacher checkpoint (:func:`dass.teacher.save_teacher`) whose best and final accuracy are ``best_acc``."""
    return teacher.save_teacher(path, sd, space, num_classes, dataset, {"best_acc": best_acc, "final_acc": best_acc},
                                recipe=None, seed=None)


def write_images(data_root, name: str, num_classes: int, n_train: int = 40, n_test: int = 20, seed: int = 0,
                 size: int = 12) -> None:
    """Random uint8 images in the original ``.npy`` layout under ``<data_root>/<name>/``."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % num_classes
        images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
        write_split(data_root, name, split, ImageArrays(images, labels, num_classes, name))


def write_quadrant_glyphs(data_root, name: str, seed: int, n_classes: int = 4, per_class: int = 12,
                          code_points=None) -> None:
    """A learnable toy glyph dataset ``<data_root>/glyphs/<name>`` of 8 px images: class c is a bright
    square in quadrant c % 4 (brightness 220 - 30 * (c // 4)) on noise; ``per_class`` train and
    ``per_class // 2`` test images per class. With ``code_points``, a glyph-style meta.json names
    each class's code point."""
    rng = np.random.default_rng(seed)
    out = Path(data_root) / "glyphs" / name
    out.mkdir(parents=True)
    for split, n in (("train", per_class), ("test", per_class // 2)):
        labels = np.repeat(np.arange(n_classes), n)
        imgs = rng.integers(0, 80, size=(len(labels), 8, 8, 3), dtype=np.uint8)
        for i, c in enumerate(labels):
            r, q = divmod(int(c) % 4, 2)
            imgs[i, r * 4:(r + 1) * 4, q * 4:(q + 1) * 4] = 220 - 30 * (int(c) // 4)
        np.save(out / f"{split}_images.npy", imgs)
        np.save(out / f"{split}_labels.npy", labels.astype(np.int64))
    if code_points is not None:
        (out / "meta.json").write_text(json.dumps({"name": name, "classes": [{"code_point": c} for c in code_points]}))


TINY_BUILD_SPACE = {"name": "tiny", "stage_widths": [4, 8, 8, 16], "stage_strides": [1, 2, 2, 2], "depths": [1, 2],
                    "width_mults": [0.5, 1.0], "image_size": 8, "in_channels": 3, "num_classes": 4}


def write_build_config(tmp, name: str, data_root, epochs: int = 2, **extra) -> Path:
    """``<tmp>/<name>.yaml``: a database build of tasks glyphs/a (meta-train) and glyphs/b (meta-test)
    under ``data_root`` in the tiny space (``<tmp>/space.yaml``), output under ``<tmp>/<name>/``;
    ``extra`` replaces top-level keys."""
    import yaml
    tmp = Path(tmp)
    if not (tmp / "space.yaml").is_file():
        (tmp / "space.yaml").write_text(yaml.safe_dump(TINY_BUILD_SPACE))
    cfg = {
        "space": str(tmp / "space.yaml"), "data_root": str(data_root), "out": str(tmp / name / "db"),
        "work_dir": str(tmp / name / "work"), "students": {"meta_train": 6, "meta_test": 6},
        "tasks": [{"dataset": "glyphs/a", "split": "meta_train"}, {"dataset": "glyphs/b", "split": "meta_test"}],
        "teacher_recipe": {"epochs": epochs, "batch_size": 16, "eval_every": 1, "lr": 0.05},
        "kd_recipe": {"epochs": epochs, "batch_size": 16, "eval_every": 1},
        "workers": 1, "threads_per_worker": 1, "device": "cpu", "feats_per_class": 3, **extra,
    }
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def task_dict(key: str, dataset: str, split: str, teacher_ckpt, sd: dict, space: SpaceConfig, num_classes: int,
              n_students: int, seed: int, teacher_acc: float = 75.0) -> dict:
    rng = np.random.default_rng(seed)
    t_arch = teacher_arch(space)
    archs = sample_unique(space, n_students, rng, exclude={t_arch})
    t_macs = macs(t_arch, space, num_classes)
    m = np.array([macs(a, space, num_classes) for a in archs])
    best = np.clip(30 + 40 * m / t_macs + rng.normal(0, 2, size=len(archs)), 0, 100)
    final = np.clip(best - rng.uniform(0, 3, size=len(archs)), 0, 100)
    noise_seed = 0
    return {
        "format": FORMAT,
        "task": {"key": key, "dataset": dataset, "split": split, "num_classes": num_classes,
                 "teacher_ckpt": str(teacher_ckpt), "data_root": ""},
        "space": to_dict(space),
        "noise_seed": noise_seed,
        "remap": "copy_paste_first",
        "recipe": {"epochs": 1, "batch_size": 8, "eval_every": 1},
        "teacher": {"arch": t_arch.to_dict(), "best_acc": teacher_acc, "final_acc": teacher_acc, "macs": t_macs,
                    "params": params(t_arch, space, num_classes), "onehot": onehot(t_arch, space),
                    "fmap": functional_maps([t_arch], sd, space, num_classes, noise_seed)[0].half()},
        "students": {
            "arch": [a.to_dict() for a in archs],
            "onehot": onehot_batch(archs, space),
            "fmap": functional_maps(archs, sd, space, num_classes, noise_seed).half(),
            "best_acc": torch.tensor(best, dtype=torch.float32),
            "final_acc": torch.tensor(final, dtype=torch.float32),
            "final_loss": torch.ones(len(archs)),
            "macs": torch.tensor(m, dtype=torch.int64),
            "params": torch.tensor([params(a, space, num_classes) for a in archs], dtype=torch.int64),
            "wall_s": torch.ones(len(archs)),
            "seed": torch.zeros(len(archs), dtype=torch.int64),
        },
        "dataset_feats": torch.randn(6, space.stage_widths[-1], generator=torch.Generator().manual_seed(seed)).half(),
    }


def write_tiny_db(root, data_root=None, tasks=(("dtd", "meta_test"), ("cub", "meta_test")), n_students: int = 8,
                  num_classes: int = 5, space: SpaceConfig = TINY) -> dict[str, dict]:
    """Task files ``<root>/db/<key>.pt`` and teachers ``<root>/teachers/<key>.pt``; with ``data_root``,
    images of the first task's dataset only (the others stay unreadable, so proxies use noise).
    Returns ``{key: task dict}``."""
    root = Path(root)
    out = {}
    for i, (dataset, split) in enumerate(tasks):
        key = dataset
        sd = tiny_teacher_state(space, num_classes, seed=i)
        ckpt = save_teacher(root / "teachers" / f"{key}.pt", sd, space, num_classes, dataset, 75.0)
        d = task_dict(key, dataset, split, ckpt, sd, space, num_classes, n_students, seed=100 + i)
        save_task_db(d, root / "db" / f"{key}.pt")
        out[key] = d
        if data_root is not None and i == 0:
            write_images(data_root, dataset, num_classes)
    return out


def write_flip_db(root, tasks, n_students: int = 12) -> Path:
    """Task files ``<root>/db/<key>.pt`` of ``tasks`` (``(key, split, teacher accuracy %)``) whose
    labels are known: under a strong teacher the bigger student wins, under a weak one the smaller
    (label ``50 + (teacher - 50) / 50 * (log MACs - mean)``), and the task records that teacher
    accuracy. Returns the database folder."""
    from dass.database.format import load_task_db
    root = Path(root)
    write_tiny_db(root, tasks=[(k, s) for k, s, _ in tasks], n_students=n_students)
    for key, _, teacher in tasks:
        path = root / "db" / f"{key}.pt"
        d = load_task_db(path)
        log_macs = np.log(d["students"]["macs"].double().numpy())
        acc = 50.0 + (teacher - 50.0) / 50.0 * (log_macs - log_macs.mean())
        d["students"]["best_acc"] = d["students"]["best_acc"].new_tensor(acc)
        d["teacher"]["best_acc"] = teacher
        save_task_db(d, path)
    return root / "db"


def write_predictor(path, space: SpaceConfig, input_type: str = "STA", inner_lr: float = 0.005, seed: int = 0,
                    edit=None) -> Path:
    """An untrained ``dass-predictor-v1`` checkpoint (raw target, one adaptation step); ``edit(model)``
    may set weights before saving."""
    from dass.predictor.adapt import init_inner_lrs
    from dass.predictor.checkpoint import LoadedPredictor, save_predictor
    from dass.predictor.model import InputDims, Predictor, PredictorConfig
    torch.manual_seed(seed)
    model = Predictor(PredictorConfig(dims=InputDims.for_space(space), input_type=input_type))
    if edit is not None:
        with torch.no_grad():
            edit(model)
    lrs = init_inner_lrs(model, inner_lr)
    p = LoadedPredictor(model, lrs, space, {"kind": "raw", "label": "best_acc", "support_default": 0.0},
                        {"steps": 1, "first_order": True}, {"noise_seed": 0, "remap": "copy_paste_first"})
    save_predictor(p, path)
    return Path(path)
