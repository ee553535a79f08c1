"""In-memory image datasets and the original release's ``.npy`` layout.

Layout (one folder per dataset)::

    <root>/<name>/train_images.npy   uint8, N x H x W  or  N x H x W x C (C = 1, 3 or 4)
    <root>/<name>/train_labels.npy   integer, N          (class ids 0..num_classes-1)
    <root>/<name>/test_images.npy
    <root>/<name>/test_labels.npy

Files are read with ``np.load(allow_pickle=False)``; images become N x H x W x 3 uint8 (grey is
repeated to three channels, an alpha channel is dropped); labels become int64. The number of
classes of a dataset is ``1 + max label`` over every ``*_labels.npy`` of its folder, so the train
and test splits agree on it. Writes are atomic (temp file + rename).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DassError
from ..io import atomic_write_bytes

DATA_SPLITS = ("train", "test")


def check_data_split(split: str) -> None:
    """A DassError unless ``split`` is one of :data:`DATA_SPLITS`."""
    if split not in DATA_SPLITS:
        raise DassError(f"split must be one of {list(DATA_SPLITS)}, got {split!r}")


def as_rgb_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """N x H x W [x 1|3|4] uint8 -> N x H x W x 3 uint8 (grey repeated, alpha dropped)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise DassError(f"{where}: images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise DassError(f"{where}: images must be N x H x W or N x H x W x C with C in 1/3/4, "
                        f"got shape {tuple(images.shape)}")
    if images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    if images.shape[-1] == 4:
        return np.ascontiguousarray(images[..., :3])
    return np.ascontiguousarray(images)


def as_int64_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """1-D integer (or integral float) labels -> int64."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DassError(f"{where}: labels must be a 1-D array, got shape {tuple(labels.shape)}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise DassError(f"{where}: labels must be whole numbers")
    elif labels.dtype.kind not in "iu":
        raise DassError(f"{where}: labels must be integers, got {labels.dtype}")
    return labels.astype(np.int64)


@dataclass
class ImageArrays:
    """A labelled image set held in memory.

    images: uint8, N x H x W x 3 (inputs of other shapes are converted by :func:`as_rgb_uint8`).
    labels: int64, N, each in [0, num_classes).
    source: where the arrays came from (a file or folder), used in error messages.
    files: the files the reader read (an image folder's images), which its identity hashes
        (:func:`dass.hashing.dataset_hash`); empty: the folder of ``source``.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str
    source: str = ""
    files: tuple = ()

    def __post_init__(self):
        where = self.source or self.name
        self.images = as_rgb_uint8(self.images, where)
        self.labels = as_int64_labels(self.labels, where)
        n = len(self.images)
        if n == 0:
            raise DassError(f"{where}: dataset is empty")
        if len(self.labels) != n:
            raise DassError(f"{where}: {n} images but {len(self.labels)} labels")
        if not isinstance(self.num_classes, (int, np.integer)) or self.num_classes < 1:
            raise DassError(f"{where}: num_classes must be a positive integer, got {self.num_classes!r}")
        self.num_classes = int(self.num_classes)
        lo, hi = int(self.labels.min()), int(self.labels.max())
        if lo < 0 or hi >= self.num_classes:
            raise DassError(f"{where}: labels must lie in [0, {self.num_classes}), found {lo}..{hi}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, index: np.ndarray, name: str | None = None) -> "ImageArrays":
        """The images at ``index`` (same classes)."""
        return ImageArrays(self.images[index], self.labels[index], self.num_classes,
                           name or self.name, self.source)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """N x H x W x 3 uint8 -> N x size x size x 3 uint8, PIL bilinear (as torchvision Resize)."""
    from PIL import Image  # lazy: PIL only when resizing; arrays is on the --help path

    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return out


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """``np.load(allow_pickle=False)`` with one-line DassErrors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DassError(f"file not found: {path}")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DassError(f"{path}: not a readable .npy array ({msg[:160]})") from None
    except MemoryError:  # a header claiming more data than fits (or than the file holds)
        raise DassError(f"{path}: its header claims an array too large to load into memory") from None


def dataset_folder(root, name: str) -> Path:
    folder = Path(root) / name
    if not folder.is_dir():
        raise DassError(f"dataset folder not found: {folder}")
    return folder


def infer_num_classes(folder: Path) -> int:
    """1 + the largest label over every ``*_labels.npy`` in ``folder``."""
    files = sorted(Path(folder).glob("*_labels.npy"))
    if not files:
        raise DassError(f"{folder}: no *_labels.npy file")
    labels = [as_int64_labels(load_npy(f, mmap=True), str(f)) for f in files]
    top = max(int(lab.max(initial=-1)) for lab in labels)
    count = sum(len(lab) for lab in labels)
    if top >= count:  # every class needs an image: a larger label is an error, not a class
        f = next(f for f, lab in zip(files, labels) if int(lab.max(initial=-1)) == top)
        raise DassError(f"{f}: label {top} but only {count} labelled images: labels must lie in [0, classes)")
    return 1 + top


def check_splits(train: ImageArrays, test: ImageArrays) -> int:
    """What every entry that trains or evaluates on a dataset needs of its two splits: the same
    classes, at least two of them, each with a training image. Returns the class count."""
    if train.num_classes != test.num_classes:
        raise DassError(f"dataset {train.name}: train has {train.num_classes} classes but test {test.num_classes}")
    if train.num_classes < 2:
        raise DassError(f"dataset {train.name}: {train.num_classes} class; classification needs at least 2")
    missing = np.flatnonzero(np.bincount(train.labels, minlength=train.num_classes) == 0)
    if len(missing):
        raise DassError(f"dataset {train.name}: class {int(missing[0])} has no training image")
    return train.num_classes


def read_split(root, name: str, split: str) -> ImageArrays:
    """Read ``<root>/<name>/<split>_{images,labels}.npy``."""
    check_data_split(split)
    folder = dataset_folder(root, name)
    img_path, lab_path = folder / f"{split}_images.npy", folder / f"{split}_labels.npy"
    images = load_npy(img_path)
    labels = load_npy(lab_path)
    if len(images) != len(labels):
        raise DassError(f"{lab_path}: {len(labels)} labels but {img_path.name} holds {len(images)} images")
    # what was read: this split's two files and every *_labels.npy (they set the class count)
    read = sorted({img_path, lab_path, *folder.glob("*_labels.npy")})
    return ImageArrays(images, labels, infer_num_classes(folder), name, source=str(img_path),
                       files=tuple(str(p) for p in read))


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_split(root, name: str, split: str, arrays: ImageArrays) -> Path:
    """Write ``arrays`` as ``<root>/<name>/<split>_{images,labels}.npy`` (atomic); returns the folder."""
    check_data_split(split)
    folder = Path(root) / name
    atomic_write_bytes(folder / f"{split}_images.npy", npy_bytes(arrays.images))
    atomic_write_bytes(folder / f"{split}_labels.npy", npy_bytes(arrays.labels.astype(np.int64)))
    return folder


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """``np.savez`` into memory (for atomic writes of ``.npz`` files)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
