"""Checks of a fetched file of the original release before it replaces its target: ``.npy`` arrays
(header, shapes against their counterparts, label range), ``.npz`` split files, zip archives and
checkpoints. :func:`validate_file` raises a one-line DassError naming the file."""
from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ..errors import DassError
from ..io import safe_torch_load

SPLIT_NPZ_KEYS = ("label_list", "idx_train", "idx_valid")


class _BadFile(Exception):
    """What is wrong with a downloaded file (turned into a DassError naming the file)."""


@dataclass(frozen=True)
class NpyHeader:
    """The header of a ``.npy`` file; the array data starts at byte ``data_offset``."""

    version: tuple
    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    data_offset: int

    @property
    def data_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def read_npy_header(path) -> NpyHeader:
    """Parse magic, version, dtype, shape and order of a ``.npy`` file (versions 1.0-3.0)."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"unsupported format version {version}")
            # 3.0 differs from 2.0 only by allowing utf-8 field names, decoded the same for ASCII
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran_order, dtype = reader(f)
        except (ValueError, SyntaxError) as e:
            raise _BadFile(f"not a valid .npy header ({str(e).splitlines()[0]})") from None
        return NpyHeader(version, dtype, tuple(shape), bool(fortran_order), f.tell())


def _split_and_role(name: str) -> tuple[str, str] | None:
    """``'train_images.npy'`` -> ``('train', 'images')``; None for other names."""
    stem = name.removesuffix(".npy")
    for role in ("images", "labels"):
        if stem.endswith("_" + role):
            return stem[: -len(role) - 1], role
    return None


def _counterparts(target: Path, split: str, role: str) -> list[Path]:
    """Where the other half of a split may lie (Tiny-ImageNet keeps labels under ``labels/``)."""
    other = f"{split}_{'labels' if role == 'images' else 'images'}.npy"
    if role == "images":
        return [target.parent / other, target.parent / "labels" / other]
    places = [target.parent / other]
    if target.parent.name == "labels":
        places.append(target.parent.parent / other)
    return places


def _check_npy(data_path: Path, target: Path, num_classes: int | None) -> None:
    header = read_npy_header(data_path)
    if header.dtype.hasobject:
        raise _BadFile("holds Python objects (needs pickle); refused")
    size = data_path.stat().st_size
    expected = header.data_offset + header.data_bytes
    if size != expected:
        raise _BadFile(f"{size} bytes, but its header ({header.dtype}, shape {header.shape}) "
                       f"needs {expected}")
    split_role = _split_and_role(target.name)
    if split_role is None:
        return
    split, role = split_role
    if role == "images" and (header.dtype != np.uint8 or len(header.shape) not in (3, 4)):
        raise _BadFile(f"images must be uint8 N x H x W [x C], got {header.dtype} {header.shape}")
    if role == "labels":
        if header.dtype.kind not in "iu" or len(header.shape) != 1:
            raise _BadFile(f"labels must be 1-D integers, got {header.dtype} {header.shape}")
        if num_classes is not None:
            _check_label_values(np.load(data_path, allow_pickle=False), split, num_classes)
    for other in _counterparts(target, split, role):
        if other.is_file():
            other_len = read_npy_header(other).shape[0]
            if other_len != header.shape[0]:
                raise _BadFile(f"{header.shape[0]} {role}, but {other} holds {other_len}")


def _check_label_values(labels: np.ndarray, split: str, num_classes: int) -> None:
    """Labels index classes 0..num_classes-1; the training split covers every class."""
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise _BadFile(f"labels span {labels.min()}..{labels.max()}, "
                       f"expected 0..{num_classes - 1}")
    present = np.unique(labels).size
    if split == "train" and present != num_classes:
        raise _BadFile(f"training labels cover {present} classes, expected {num_classes}")


def _check_zip(data_path: Path) -> set[str]:
    """Every member passes its CRC check and is one :func:`safe_extract_zip` would extract into
    the archive's folder (so a zip that extraction refuses is never recorded as verified);
    returns the member names."""
    dest = data_path.parent.resolve()
    try:
        with zipfile.ZipFile(data_path) as zf:
            bad = zf.testzip()
            names = set(zf.namelist())
            unsafe = next(((i.filename, r) for i in zf.infolist() if (r := unsafe_zip_member(i, dest))), None)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
        raise _BadFile(f"not a readable zip archive ({e})") from None
    if bad is not None:
        raise _BadFile(f"member {bad!r} fails its CRC check")
    if unsafe is not None:
        raise _BadFile(f"member {unsafe[0]!r} {unsafe[1]}: extraction would refuse it")
    return names


def _check_split_npz(data_path: Path) -> None:
    """A Tiny-ImageNet split file: an intact npz holding label_list, idx_train, idx_valid."""
    names = _check_zip(data_path)
    missing = [k for k in SPLIT_NPZ_KEYS if f"{k}.npy" not in names]
    if missing:
        raise _BadFile(f"split file lacks {', '.join(missing)}")


def _check_checkpoint(data_path: Path) -> None:
    try:
        safe_torch_load(data_path)
    except DassError as e:
        raise _BadFile(str(e)) from None


def validate_file(data_path, target=None, *, num_classes: int | None = None) -> None:
    """Check the bytes at ``data_path`` as the file ``target`` (its name picks the checks; its
    folder holds the other half of an images/labels pair). Raises DassError naming ``target``.

    ``.npy``: header parses and the size is header + data; ``*_images.npy`` uint8 with 3 or 4
    dims; ``*_labels.npy`` 1-D integers in 0..num_classes-1 (train: every class present); the
    images and labels of a split present side by side have the same length. ``.npz``: intact
    archive holding the split keys. ``.zip``: every member passes its CRC. ``.pth.tar``/``.pth``/
    ``.pt``: loads with ``torch.load(weights_only=True)``.
    """
    data_path = Path(data_path)
    target = Path(target) if target is not None else data_path
    name = target.name
    try:
        if name.endswith(".npy"):
            _check_npy(data_path, target, num_classes)
        elif name.endswith(".npz"):
            _check_split_npz(data_path)
        elif name.endswith(".zip"):
            _check_zip(data_path)
        elif name.endswith((".pth.tar", ".pth", ".pt")):
            _check_checkpoint(data_path)
    except _BadFile as e:
        raise DassError(f"{target}: {e}") from None


def unsafe_zip_member(info: zipfile.ZipInfo, dest: Path) -> str | None:
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "climbs out with '..'"
    if not (dest / name).resolve().is_relative_to(dest):
        return f"resolves outside {dest}"
    return None
