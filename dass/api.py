"""The Python entry: ``from dass import find_student``.

:func:`find_student` is ``python -m dass.pipeline`` called from Python: it builds the pipeline's
config (a profile of ``configs/pipeline/``, then ``settings``, then its own arguments) and calls
:func:`dass.pipeline.runner.run`, so a call and the command with the same inputs share one run folder
(default ``runs/pipeline/<dataset>``), its identity and its resumption: a finished stage is not
redone. It returns the picks as :class:`Pick` objects.

Datasets: a registry name (``glyphs/ogham``, ``folder:<path>``, ``npy:<path>``, ...), a path to a
folder (``npy:`` when it holds ``train_images.npy``, else ``folder:``), or arrays in memory
(:class:`Arrays`, or a tuple ``(images, labels[, test_images, test_labels])``). Arrays are checked,
converted to the npy layout that ``npy:<path>`` reads (:mod:`dass.data.arrays`) and written once into
``runs/arrays/<hash>/``, named by the hash of their content: the same arrays give the same dataset
name and so the same run folder and identity, changed arrays another. (Not inside the run folder:
the pipeline refuses inputs there, which a rerun may replace.)

Every error is a :class:`dass.errors.DassError` with the message the command prints.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import config as cfgmod
from .data.arrays import as_int64_labels, npy_bytes
from .data.registry import known_patterns
from .errors import DassError
from .export.config import FORMATS as EXPORT_FORMATS
from .hashing import named_blobs_sha256
from .io import atomic_write_bytes, read_json
from .pipeline.config import PipelineConfig
from .pipeline.runner import run as pipeline_run
from .space import Arch

PROFILES = Path(__file__).resolve().parents[1] / "configs" / "pipeline"
ARRAYS_ROOT = Path("runs") / "arrays"   # where in-memory datasets are written (relative, as runs/pipeline)
HELD_OUT = 0.2   # share of each class held out as the test split when no test arrays are given


@dataclass
class Arrays:
    """A dataset in memory. ``images``: numpy or torch, N x H x W (grey), N x H x W x C or N x C x H x W
    (C = 1, 3 or 4), uint8 (0..255) or float ([0, 1], or whole-number ranges up to 255); ``labels``:
    integers 0..K-1, every class in the training images. Without test arrays, a seeded 20 % of each
    class (of classes with two or more images) is held out as the test split. ``classes``: the K class
    names, in label order (they go into the export's ``model.json``)."""

    images: Any
    labels: Any
    test_images: Any = None
    test_labels: Any = None
    classes: list[str] | None = None


@dataclass
class Pick:
    """One searched student, best first."""

    rank: int                      # 1 = the best by the predictor
    arch: str                      # the architecture, as the logs and reports write it
    arch_dict: dict                # {"depths": [...], "widths": [[...], ...]} (Arch.from_dict)
    score: float                   # the predictor's rank score
    pred_acc: float | None         # predicted test top-1 (%), when the predictor gives one
    macs: int
    params: int
    latency_ms: float | None = None  # the search's latency of the candidate, when it gives one
    kd_acc: dict[int, float] | None = None  # trained: best test top-1 (%) of the KD run of each seed
    checkpoint: str | None = None  # trained: best.pt of the seed with the best accuracy
    export: dict[str, str] | None = None  # exported (rank 1): format (and model_json, model_card) -> file
    run_dir: str = ""              # the pipeline run folder


def find_student(data, teacher=None, budget: dict | None = None, top_k: int = 3, train: bool = False,
                 export=False, profile: str = "cpu", settings: dict | None = None) -> list[Pick]:
    """Search (and with ``train=True`` KD-train, with ``export`` export) students for ``data``.

    ``teacher``: a teacher checkpoint (None: the profile's, i.e. trained here); ``budget``: e.g.
    ``{"macs": 0.5}``, ``{"params": 2e5}`` (a value <= 1 is a fraction of the teacher's), any key of
    the pipeline's ``budget`` section, replacing the profile's budget (None: the profile's);
    ``top_k``: how many picks; ``train``: KD-train them (else the search's picks only); ``export``:
    True (the profile's formats, else all), a list of formats, or False (needs ``train``);
    ``profile``: a name in ``configs/pipeline/`` or a YAML file; ``settings``: other pipeline keys,
    nested or dotted (``{"kd_recipe.epochs": 5, "run_dir": "runs/x"}``;
    ``python -m dass.pipeline --help`` lists them). Paths are relative to the current folder, as
    on the command line. Returns the picks, best first."""
    cfg = pipeline_config(data, teacher, budget, top_k, {"train": train, "export": export, "profile": profile,
                                                         "settings": settings})
    return picks_of(pipeline_run(cfg), cfg)


def pipeline_config(data, teacher, budget, top_k: int, options: dict) -> PipelineConfig:
    """The pipeline config of a :func:`find_student` call (``options``: train, export, profile, settings)."""
    profile, settings = options.get("profile", "cpu"), options.get("settings") or {}
    path = Path(profile) if str(profile).endswith((".yaml", ".yml")) else PROFILES / f"{profile}.yaml"
    if not path.is_file():
        raise DassError(f"pipeline profile not found: {path} (give a name in {PROFILES} or a YAML file)")
    if not isinstance(settings, dict):
        raise DassError(f"settings must be a dict of pipeline keys, got {type(settings).__name__}")
    if budget is not None and not isinstance(budget, dict):
        raise DassError(f"budget must be a dict such as {{'macs': 0.5}}, got {type(budget).__name__}")
    values = _merged(cfgmod.read_with_bases(path), _nested(settings))
    values.update(top_k=top_k, train=bool(options.get("train")))
    if teacher is not None:
        values["teacher"] = str(teacher)
    if budget is not None:
        values["budget"] = dict(budget)
    values["export"] = _formats(options.get("export"), values.get("export"), values["train"])
    cfg = cfgmod.from_dict(PipelineConfig, values, where=f"{path} (with the arguments of find_student)")
    cfg.dataset = dataset_name(data)   # after the config's own errors: arrays are written only for a good config
    cfg.check()
    return cfg


def _formats(export, profile_formats, train: bool) -> list[str]:
    if export is None or export is False:
        return []
    if not train:
        raise DassError("export needs train=True: the exported student is the KD-trained one")
    if export is True:
        return list(profile_formats or EXPORT_FORMATS)
    return [export] if isinstance(export, str) else list(export)


def _nested(flat: dict) -> dict:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (nested values merged)."""
    out: dict = {}
    for key, value in flat.items():
        *parents, last = str(key).split(".")
        at = out
        for p in parents:
            at = at.setdefault(p, {})
            if not isinstance(at, dict):
                raise DassError(f"settings: key '{key}' sets a key inside '{p}', which is given a value")
        at[last] = _merged(at[last], value) if isinstance(at.get(last), dict) and isinstance(value, dict) else value
    return out


def _merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merged(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


# ---------------------------------------------------------------- datasets

def _is_registry_name(name: str) -> bool:
    for pattern in known_patterns():
        prefix = pattern[:pattern.index("<")] if "<" in pattern else None
        if name == pattern if prefix is None else (name.startswith(prefix) and len(name) > len(prefix)):
            return True
    return False


def dataset_name(data) -> str:
    """The pipeline's ``dataset`` for ``data`` (see the module docstring); arrays are written first."""
    if isinstance(data, str) and _is_registry_name(data):
        return data
    if isinstance(data, (str, Path)):
        folder = Path(data)
        if not folder.is_dir():
            raise DassError(f"dataset '{data}': not a known dataset name nor a folder (known names: "
                            f"{', '.join(known_patterns())})")
        return f"{'npy' if (folder / 'train_images.npy').is_file() else 'folder'}:{data}"
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        data = Arrays(*data)
    if isinstance(data, dict):
        data = Arrays(**data)
    if not isinstance(data, Arrays):
        raise DassError(f"data must be a dataset name, a folder, Arrays(...) or (images, labels[, test_images, "
                        f"test_labels]); got {type(data).__name__}")
    return f"npy:{write_arrays(data)}"


def _numpy(x, where: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor (torch is not imported for this)
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:
        raise DassError(f"{where}: not an array ({e})") from None


def as_images(x, where: str) -> np.ndarray:
    """N x H x W [x C] uint8 from numpy/torch images (channels last or first, uint8 or float)."""
    a = _numpy(x, where)
    if a.ndim == 4 and a.shape[-1] not in (1, 3, 4) and a.shape[1] in (1, 3, 4):
        a = a.transpose(0, 2, 3, 1)   # N x C x H x W
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[-1] not in (1, 3, 4)) or a.size == 0:
        raise DassError(f"{where}: images must be N x H x W, N x H x W x C or N x C x H x W with C in 1/3/4, "
                        f"got shape {tuple(a.shape)}")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind not in "fiu":
        raise DassError(f"{where}: images must be uint8 or float (or integer) pixels, got {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        i = int(np.argwhere(~np.isfinite(a))[0][0])
        raise DassError(f"{where}: image {i} holds NaN or infinity")
    lo, hi = float(a.min()), float(a.max())
    if a.dtype.kind == "f" and lo >= 0 and hi <= 1:
        a = a * 255.0
    elif lo < 0 or hi > 255:
        raise DassError(f"{where}: pixel values must lie in [0, 1] (float) or [0, 255], found {lo:g}..{hi:g}: "
                        "give the images before any normalisation")
    return np.rint(a).astype(np.uint8)


def _held_out(labels: np.ndarray) -> np.ndarray:
    """Whether each image is held out: a seeded ``HELD_OUT`` share of each class of 2+ images."""
    rng = np.random.default_rng(0)
    out = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) >= 2:
            out[idx[:max(1, round(HELD_OUT * len(idx)))]] = True
    return out


def _splits(data: Arrays) -> dict[str, np.ndarray]:
    images, labels = as_images(data.images, "images"), _labels(data.labels, "labels")
    if len(labels) != len(images):
        raise DassError(f"{len(images)} images but {len(labels)} labels")
    if (data.test_images is None) != (data.test_labels is None):
        raise DassError("give both test_images and test_labels, or neither (then 20 % of each class is held out)")
    if data.test_images is None:
        test = _held_out(labels)
        return {"train_images": images[~test], "train_labels": labels[~test],
                "test_images": images[test], "test_labels": labels[test]}
    t_images, t_labels = as_images(data.test_images, "test_images"), _labels(data.test_labels, "test_labels")
    if len(t_labels) != len(t_images):
        raise DassError(f"{len(t_images)} test images but {len(t_labels)} test labels")
    return {"train_images": images, "train_labels": labels, "test_images": t_images, "test_labels": t_labels}


def _labels(y, where: str) -> np.ndarray:
    labels = as_int64_labels(_numpy(y, where), where)
    if len(labels) and labels.min() < 0:
        raise DassError(f"{where}: labels must be 0..K-1, found {int(labels.min())}")
    return labels


def write_arrays(data: Arrays) -> Path:
    """Check ``data`` and write it in the npy layout into ``ARRAYS_ROOT/<hash of the content>/`` (once:
    files already there with the same bytes are kept); returns the folder."""
    arrays = _splits(data)
    if not len(arrays["test_labels"]):
        raise DassError("no test split: every class has a single image; give test_images and test_labels")
    k = 1 + int(max(arrays["train_labels"].max(), arrays["test_labels"].max()))
    empty = np.flatnonzero(np.bincount(arrays["train_labels"], minlength=k) == 0)
    if k < 2 or len(empty):
        raise DassError("labels must name 2 or more classes 0..K-1, each with a training image; "
                        + (f"class {int(empty[0])} of 0..{k - 1} has none" if len(empty) else f"found {k} class"))
    blobs = {f"{name}.npy": npy_bytes(a) for name, a in arrays.items()}
    if data.classes is not None:
        names = [str(c) for c in data.classes]
        if len(names) != k:
            raise DassError(f"classes names {len(names)} classes, the labels {k}")
        blobs["classes.json"] = json.dumps(names, ensure_ascii=False).encode()
    folder = ARRAYS_ROOT / named_blobs_sha256(blobs)[:16]
    for name, blob in blobs.items():
        f = folder / name
        if not (f.is_file() and f.stat().st_size == len(blob) and f.read_bytes() == blob):
            atomic_write_bytes(f, blob)
    return folder


# ---------------------------------------------------------------- results

def picks_of(result: dict, cfg: PipelineConfig) -> list[Pick]:
    """The :class:`Pick` objects of a pipeline result (``run``'s return value)."""
    trained = {p["rank"]: p for p in (result.get("kd") or {}).get("picks", [])}
    exported = _export_files(result.get("export"))
    out = []
    for e in result["search"]["top"]:
        arch = Arch.from_dict(e["arch"])
        pick = Pick(rank=e["rank"], arch=str(arch), arch_dict=arch.to_dict(), score=e["score"],
                    pred_acc=e.get("pred_acc"), macs=e["macs"], params=e["params"], latency_ms=e.get("latency_ms"),
                    run_dir=result["run_dir"])
        if e["rank"] in trained:
            folder = Path(trained[e["rank"]]["run_dir"])
            pick.kd_acc = {s: read_json(folder / f"seed{s}" / "metrics.json")["best_acc"] for s in cfg.seeds}
            best = max(pick.kd_acc, key=lambda s: (pick.kd_acc[s], -s))
            pick.checkpoint = str(folder / f"seed{best}" / "best.pt")
        if e["rank"] == 1 and exported:
            pick.export = exported
        out.append(pick)
    return out


def _export_files(summary: dict | None) -> dict[str, str] | None:
    if not summary:
        return None
    out = Path(summary["out"])
    files = read_json(out / "model.json")["files"]
    return {**{k: str(out / v) for k, v in files.items()}, "model_json": str(out / "model.json"),
            "model_card": str(out / "MODEL_CARD.md")}
