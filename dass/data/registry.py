"""Datasets chosen by name.

Known names (``<...>`` is a parameter):

* ``tiny_imagenet`` (200 classes; "test" = the valid files) and ``tiny_imagenet-<k>`` (split task
  k, 40 classes; see :mod:`dass.data.tiny_imagenet`),
* ``cub``, ``dtd``, ``quickdraw``, ``stanford_cars``: the original ``.npy`` layout under
  ``<root>/<name>/`` (see :mod:`dass.data.arrays`),
* ``glyphs/<member>``: a built-in glyph dataset in the same layout under ``<root>/glyphs/<member>/``
  (``python -m dass.data glyphs`` writes them); ``outside/<member>`` likewise under
  ``<root>/outside/<member>/``: the probe sets outside the family (``configs/data/outside.yaml``),
* ``folder:<path>``: an image folder (see :mod:`dass.data.folder`); ``root`` is not used,
* ``npy:<path>``: the original ``.npy`` layout in any folder (``<path>/train_images.npy``, ...; see
  :mod:`dass.data.arrays`); ``root`` is not used. Every class ``0..K-1`` must have training images,
* ``subset:<source>[<classes>]+...``: chosen classes of other datasets, labels re-indexed (see
  :mod:`dass.data.subset`).

A reader is registered with :func:`register_dataset` under such a pattern; it is called as
``reader(arg, root, split, image_size)`` where ``arg`` is the text matched by ``<...>`` (None for a
plain name). ``load_dataset`` resizes whatever the reader returns to ``image_size`` when given.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import DassError
from . import subset, tiny_imagenet
from .arrays import (DATA_SPLITS, ImageArrays, as_int64_labels, check_data_split, dataset_folder, infer_num_classes,
                     load_npy, read_split, resize_images)
from .folder import load_image_folder
from .glyph_config import FAMILIES as GLYPH_FAMILIES

Reader = Callable[[Optional[str], str, str, Optional[int]], ImageArrays]
Lister = Callable[[str], list]

NPY_DATASETS = ("cub", "dtd", "quickdraw", "stanford_cars")


@dataclass(frozen=True)
class _Entry:
    pattern: str
    reader: Reader
    lister: Lister | None

    @property
    def prefix(self) -> str | None:
        """The fixed part of a parametric pattern ('glyphs/' for 'glyphs/<member>'), else None."""
        return self.pattern[:self.pattern.index("<")] if "<" in self.pattern else None


_REGISTRY: dict[str, _Entry] = {}


def register_dataset(pattern: str, lister: Lister | None = None):
    """Decorator: register ``reader`` for names matching ``pattern`` ('cub' or 'glyphs/<member>').

    ``lister(root)`` (optional) returns the names of this pattern present under ``root``.
    """
    def deco(reader: Reader) -> Reader:
        if pattern in _REGISTRY:
            raise ValueError(f"dataset pattern {pattern!r} registered twice")
        _REGISTRY[pattern] = _Entry(pattern, reader, lister)
        return reader
    return deco


def known_patterns() -> list[str]:
    return list(_REGISTRY)


def dataset_key(name: str) -> str:
    """The one file-name form of a dataset name (run folders, database task keys): '/' and ':' become
    '-', leading/trailing '-', '_' and '.' go ('glyphs/latin' -> 'glyphs-latin',
    'folder:/data/x' -> 'folder--data-x'); an empty result is 'dataset'."""
    return name.replace("/", "-").replace(":", "-").strip("-_.") or "dataset"


def _lookup(name: str) -> tuple[_Entry, str | None]:
    if name in _REGISTRY and _REGISTRY[name].prefix is None:
        return _REGISTRY[name], None
    best = None
    for entry in _REGISTRY.values():
        p = entry.prefix
        if p is not None and name.startswith(p) and len(name) > len(p):
            if best is None or len(p) > len(best.prefix):
                best = entry
    if best is None:
        raise DassError(f"unknown dataset '{name}' (known: {', '.join(known_patterns())})")
    return best, name[len(best.prefix):]


def load_dataset(name: str, root, split: str, image_size: int | None = None) -> ImageArrays:
    """Load split "train" or "test" of dataset ``name`` from ``root`` (resized when ``image_size``)."""
    check_data_split(split)
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise DassError(f"image_size must be a positive integer, got {image_size!r}")
    entry, arg = _lookup(name)
    arrays = entry.reader(arg, str(root), split, image_size)
    if image_size is not None and arrays.image_size != (image_size, image_size):
        arrays = ImageArrays(resize_images(arrays.images, image_size), arrays.labels,
                             arrays.num_classes, arrays.name, arrays.source, arrays.files)
    return arrays


def list_datasets(root) -> list[str]:
    """Names of the datasets present under ``root`` (folder datasets are not listed)."""
    names: list[str] = []
    for entry in _REGISTRY.values():
        if entry.lister is not None:
            names += entry.lister(str(root))
    return names


def dataset_info(name: str, root) -> dict:
    """Classes and sizes of both splits, read from array headers where the layout allows."""
    entry, arg = _lookup(name)
    if entry.pattern in NPY_DATASETS or entry.pattern in ("npy:<path>", *_GLYPH_PATTERNS):
        if entry.pattern == "npy:<path>":
            folder = dataset_folder(Path(arg).parent, Path(arg).name)
        else:
            folder = Path(root) / name
        shapes = {s: load_npy(folder / f"{s}_images.npy", mmap=True).shape for s in DATA_SPLITS}
        return {"name": name, "num_classes": infer_num_classes(folder),
                **{s: int(shape[0]) for s, shape in shapes.items()},
                "image_shape": [int(v) for v in shapes["train"][1:3]] + [3]}
    if entry.pattern == tiny_imagenet.NAME:
        return tiny_imagenet.info(root)
    if entry.pattern == f"{tiny_imagenet.NAME}-<k>" and arg.isdigit():
        return tiny_imagenet.info(root, int(arg))
    train, test = (load_dataset(name, root, s) for s in DATA_SPLITS)
    return {"name": name, "num_classes": train.num_classes, "train": len(train), "test": len(test),
            "image_shape": list(train.images.shape[1:])}


# ---------------------------------------------------------------- the built-in readers

def _npy_lister(rel: str) -> Lister:
    return lambda root: [rel] if (Path(root) / rel / "train_images.npy").is_file() else []


for _name in NPY_DATASETS:
    register_dataset(_name, _npy_lister(_name))(
        lambda arg, root, split, image_size, _n=_name: read_split(root, _n, split))


def _tiny_lister(root: str) -> list[str]:
    if not (Path(root) / tiny_imagenet.NAME / "train_images.npy").is_file():
        return []
    return [tiny_imagenet.NAME] + [f"{tiny_imagenet.NAME}-{k}" for k in range(tiny_imagenet.NUM_SPLITS)]


@register_dataset(tiny_imagenet.NAME)
def _tiny_full(arg, root, split, image_size):
    return tiny_imagenet.load_full(root, split)


@register_dataset(f"{tiny_imagenet.NAME}-<k>", _tiny_lister)
def _tiny_task(arg, root, split, image_size):
    if not arg.isdigit():
        raise DassError(f"tiny_imagenet task must be tiny_imagenet-<k> with k an integer, got '{arg}'")
    return tiny_imagenet.load_task(root, int(arg), split)


def _glyph_family(family: str) -> None:
    """Register ``<family>/<member>``: a glyph dataset under ``<root>/<family>/<member>/``."""
    def lister(root: str) -> list[str]:
        base = Path(root) / family
        if not base.is_dir():
            return []
        return [f"{family}/{d.name}" for d in sorted(base.iterdir()) if (d / "train_images.npy").is_file()]

    @register_dataset(f"{family}/<member>", lister)
    def _reader(arg, root, split, image_size):
        arrays = read_split(Path(root) / family, arg, split)
        arrays.name = f"{family}/{arg}"
        return arrays


_GLYPH_PATTERNS = tuple(f"{family}/<member>" for family in GLYPH_FAMILIES)
for _family in GLYPH_FAMILIES:
    _glyph_family(_family)


@register_dataset("folder:<path>")
def _folder(arg, root, split, image_size):
    return load_image_folder(arg, split, image_size)



@register_dataset("npy:<path>")
def _npy_folder(arg, root, split, image_size):
    """The original layout at any path; unlike the built-in names, a gap in the class ids (a class
    with no training image) is an error, as it usually means labels that do not start at 0."""
    folder = Path(arg).expanduser()
    arrays = read_split(folder.parent, folder.name, split)
    arrays.name = f"npy:{arg}"
    path = folder / "train_labels.npy"
    train_labels = arrays.labels if split == "train" else as_int64_labels(load_npy(path, mmap=True), str(path))
    counts = np.bincount(train_labels, minlength=arrays.num_classes)
    if arrays.num_classes < 2:
        raise DassError(f"{folder}: labels name {arrays.num_classes} class; a classifier needs at least 2")
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        # the class count is 1 + the largest label of every *_labels.npy: name the file that set it
        files = sorted(folder.glob("*_labels.npy"))
        top = max(files, key=lambda f: int(as_int64_labels(load_npy(f, mmap=True), str(f)).max(initial=-1)))
        why = "" if top.name == path.name else f"; the class count {arrays.num_classes} comes from {top}"
        raise DassError(f"{path}: class {int(empty[0])} of 0..{arrays.num_classes - 1} "
                        f"has no training image (labels must be 0..K-1 with every class present{why})")
    return arrays


@lru_cache(maxsize=64)
def _subset_source(name: str, root: str, split: str) -> ImageArrays:
    return load_dataset(name, root, split)


@register_dataset(f"{subset.PREFIX}<spec>")
def _subset(arg, root, split, image_size):
    return subset.load_subset(arg, root, split, _subset_source)


def class_list(name: str, root) -> list[tuple[str, int]]:
    """The ``(source, class index)`` pairs of dataset ``name``, in label order (a class subset's
    from its name, any other dataset's from its class count)."""
    if name.startswith(subset.PREFIX):
        return [(src, i) for src, idx in subset.parse_subset(name[len(subset.PREFIX):]) for i in idx]
    return [(name, i) for i in range(int(dataset_info(name, root)["num_classes"]))]


def class_identities(name: str, root, _cp_cache: dict | None = None) -> list[tuple]:
    """The identity of every class of dataset ``name``, in label order (:func:`subset.class_identity`)."""
    cache = {} if _cp_cache is None else _cp_cache
    return [subset.class_identity(root, src, i, cache) for src, i in class_list(name, root)]
