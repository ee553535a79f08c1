"""Tiny-ImageNet in the original release's layout, and its 40-class split tasks.

Layout::

    <root>/tiny_imagenet/train_images.npy        uint8 N x 64 x 64 x 3 (200 classes)
    <root>/tiny_imagenet/valid_images.npy
    <root>/tiny_imagenet/{train,valid}_labels.npy          labels, either here ...
    <root>/tiny_imagenet/labels/{train,valid}_labels.npy   ... or here (the original's downloader
                                                            writes labels/, its loader reads the
                                                            dataset folder: both are accepted, the
                                                            dataset folder first)
    <root>/tiny_imagenet/10_split/split_<k>.npz            keys label_list, idx_train, idx_valid

Dataset ``tiny_imagenet`` is the whole set (split "test" = the valid files). Task
``tiny_imagenet-<k>`` is split k: its "train" images are ``train_images[idx_train]`` and its "test"
images ``train_images[idx_valid]`` (both index arrays index the TRAIN images), labels remapped to
0..len(label_list)-1 in ``label_list`` order.

Generated splits (:func:`generate_splits`, used when ``10_split/`` is absent). With C classes and
``classes_per_split`` = P, s = C // P splits come from one permutation: split k takes positions
``[(k mod s) * P, (k mod s + 1) * P)`` of ``np.random.default_rng([seed, k // s]).permutation(C)``
as its ``label_list`` (for Tiny-ImageNet, 200 classes and P = 40: splits 0-4 partition the
classes, so do splits 5-9). For every class of the split, its train images are shuffled by
``np.random.default_rng([seed, k, class_id])`` and the first ``valid_per_class`` go to
``idx_valid``, the rest to ``idx_train``; both index arrays are sorted ascending. Default seed 0,
50 validation images per class.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DassError
from ..io import atomic_write_bytes
from .arrays import ImageArrays, as_int64_labels, dataset_folder, load_npy, npz_bytes

NAME = "tiny_imagenet"
NUM_SPLITS = 10
CLASSES_PER_SPLIT = 40
VALID_PER_CLASS = 50
SPLIT_SEED = 0
_FILE_SPLIT = {"train": "train", "test": "valid"}


def labels_path(folder: Path, file_split: str) -> Path:
    """``<folder>/<s>_labels.npy`` if present, else ``<folder>/labels/<s>_labels.npy``."""
    for candidate in (folder / f"{file_split}_labels.npy", folder / "labels" / f"{file_split}_labels.npy"):
        if candidate.is_file():
            return candidate
    raise DassError(f"labels not found: neither {folder / f'{file_split}_labels.npy'} "
                    f"nor {folder / 'labels' / f'{file_split}_labels.npy'} exists")


def _read_labels(folder: Path, file_split: str) -> tuple[np.ndarray, Path]:
    path = labels_path(folder, file_split)
    return as_int64_labels(load_npy(path), str(path)), path


def split_path(root, k: int) -> Path:
    return Path(root) / NAME / "10_split" / f"split_{k}.npz"


def load_full(root, split: str) -> ImageArrays:
    """The whole Tiny-ImageNet: split "train" or "test" (the ``valid_*`` files)."""
    if split not in _FILE_SPLIT:
        raise DassError(f"split must be one of {list(_FILE_SPLIT)}, got {split!r}")
    folder = dataset_folder(root, NAME)
    fs = _FILE_SPLIT[split]
    img_path = folder / f"{fs}_images.npy"
    images = load_npy(img_path)
    labels, lab_path = _read_labels(folder, fs)
    if len(images) != len(labels):
        raise DassError(f"{lab_path}: {len(labels)} labels but {img_path.name} holds {len(images)} images")
    num_classes = 1 + int(labels.max(initial=-1))
    other = _FILE_SPLIT["test" if split == "train" else "train"]
    if any(p.is_file() for p in (folder / f"{other}_labels.npy", folder / "labels" / f"{other}_labels.npy")):
        num_classes = max(num_classes, 1 + int(_read_labels(folder, other)[0].max(initial=-1)))
    return ImageArrays(images, labels, num_classes, NAME, source=str(img_path))


def generate_splits(train_labels: np.ndarray, num_splits: int = NUM_SPLITS,
                    classes_per_split: int = CLASSES_PER_SPLIT, valid_per_class: int = VALID_PER_CLASS,
                    seed: int = SPLIT_SEED) -> list[dict[str, np.ndarray]]:
    """Deterministic split tasks (see the module docstring): a list of dicts with the npz keys."""
    labels = np.asarray(train_labels, dtype=np.int64)
    num_classes = int(labels.max()) + 1
    per_perm = num_classes // classes_per_split
    if per_perm < 1:
        raise DassError(f"cannot cut {num_classes} classes into splits of {classes_per_split}")
    splits = []
    for k in range(num_splits):
        order = np.random.default_rng([seed, k // per_perm]).permutation(num_classes)
        start = (k % per_perm) * classes_per_split
        label_list = order[start:start + classes_per_split].astype(np.int64)
        idx_train, idx_valid = [], []
        for c in label_list:
            members = np.flatnonzero(labels == c)
            if len(members) <= valid_per_class:
                raise DassError(f"class {c} has {len(members)} train images; splits need more than "
                                f"{valid_per_class} (the validation share)")
            members = np.random.default_rng([seed, k, int(c)]).permutation(members)
            idx_valid.append(members[:valid_per_class])
            idx_train.append(members[valid_per_class:])
        splits.append({"label_list": label_list,
                       "idx_train": np.sort(np.concatenate(idx_train)).astype(np.int64),
                       "idx_valid": np.sort(np.concatenate(idx_valid)).astype(np.int64)})
    return splits


def ensure_splits(root, num_splits: int = NUM_SPLITS, **kwargs) -> list[Path]:
    """Write generated ``10_split/split_<k>.npz`` files for every k whose file is absent."""
    paths = [split_path(root, k) for k in range(num_splits)]
    if all(p.is_file() for p in paths):
        return paths
    labels, _ = _read_labels(dataset_folder(root, NAME), "train")
    for p, split in zip(paths, generate_splits(labels, num_splits, **kwargs)):
        if not p.is_file():
            atomic_write_bytes(p, npz_bytes(**split))
    return paths


def read_split_file(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DassError(f"split file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("label_list", "idx_train", "idx_valid") if k not in z.files]
            if missing:
                raise DassError(f"{path}: missing key '{missing[0]}' (has {', '.join(z.files)})")
            return {k: as_int64_labels(z[k], f"{path}:{k}") for k in ("label_list", "idx_train", "idx_valid")}
    except (ValueError, OSError, EOFError) as e:
        raise DassError(f"{path}: not a readable .npz file ({str(e)[:160]})") from None


def load_task(root, k: int, split: str) -> ImageArrays:
    """Task ``tiny_imagenet-<k>``: "train" -> idx_train, "test" -> idx_valid, labels 0..39."""
    if split not in _FILE_SPLIT:
        raise DassError(f"split must be one of {list(_FILE_SPLIT)}, got {split!r}")
    folder = dataset_folder(root, NAME)
    path = split_path(root, k)
    if not path.is_file():
        if k >= NUM_SPLITS:
            raise DassError(f"split file not found: {path} (only splits 0..{NUM_SPLITS - 1} are generated)")
        ensure_splits(root)
    spec = read_split_file(path)
    img_path = folder / "train_images.npy"
    images = load_npy(img_path, mmap=True)
    labels, lab_path = _read_labels(folder, "train")
    if len(images) != len(labels):
        raise DassError(f"{lab_path}: {len(labels)} labels but {img_path.name} holds {len(images)} images")
    index = spec["idx_train" if split == "train" else "idx_valid"]
    if len(index) == 0:
        raise DassError(f"{path}: {'idx_train' if split == 'train' else 'idx_valid'} is empty")
    if index.min() < 0 or index.max() >= len(labels):
        raise DassError(f"{path}: indices must lie in [0, {len(labels)}), found {index.min()}..{index.max()}")
    label_list = spec["label_list"]
    if len(label_list) == 0 or label_list.min() < 0 or len(np.unique(label_list)) != len(label_list):
        raise DassError(f"{path}: label_list must hold distinct non-negative class ids")
    remap = np.full(int(max(labels.max(), label_list.max())) + 1, -1, dtype=np.int64)
    remap[label_list] = np.arange(len(label_list))
    new_labels = remap[labels[index]]
    if np.any(new_labels < 0):
        bad = int(labels[index][new_labels < 0][0])
        raise DassError(f"{path}: an indexed image has class {bad}, which is not in label_list")
    return ImageArrays(np.asarray(images[index]), new_labels, len(label_list), f"{NAME}-{k}", source=str(path))


def info(root, k: int | None = None) -> dict:
    """Classes and split sizes of the whole set (k None) or of task k, from headers and split files
    only (a task whose split file is absent is described by its generated split, nothing written)."""
    folder = dataset_folder(root, NAME)
    header = load_npy(folder / "train_images.npy", mmap=True).shape
    shape = [int(v) for v in header[1:3]] + [3]
    if k is None:
        labels = {s: _read_labels(folder, fs)[0] for s, fs in _FILE_SPLIT.items()}
        return {"name": NAME, "num_classes": 1 + max(int(v.max()) for v in labels.values()),
                **{s: len(v) for s, v in labels.items()}, "image_shape": shape}
    path = split_path(root, k)
    if not path.is_file() and k >= NUM_SPLITS:
        raise DassError(f"split file not found: {path} (only splits 0..{NUM_SPLITS - 1} are generated)")
    spec = read_split_file(path) if path.is_file() else generate_splits(_read_labels(folder, "train")[0])[k]
    return {"name": f"{NAME}-{k}", "num_classes": len(spec["label_list"]), "train": len(spec["idx_train"]),
            "test": len(spec["idx_valid"]), "image_shape": shape}

