"""Any torchvision-style image folder read into :class:`ImageArrays`.

Accepted layouts (class names = sub-folder names, sorted; label = position in that order)::

    root/train/<class>/*.png|jpg|...   and   root/test/<class>/...   (``val`` is accepted for test)
    root/<class>/*.png|jpg|...         one folder: each class's files (sorted by name) are shuffled
                                       with np.random.default_rng([seed, crc32(class name)]) and the
                                       first round(test_fraction * n) go to "test" (at least one
                                       stays in "train").

A class is a sub-folder (symbolic links followed) holding at least one image file (a name ending in
one of :data:`EXTENSIONS`); names starting with "." (files and folders) are skipped, other files
and sub-folders without images are not classes. The images read are listed in
``ImageArrays.files``: the dataset's identity (:func:`dass.hashing.dataset_hash`) hashes exactly them.

Images of any size and mode are read with PIL: the largest centred square is cut out and resized
(bilinear) to ``image_size`` x ``image_size`` (the same as resizing the shorter side to
``image_size`` and centre-cropping). Pixel depth is scaled, never clipped: 16-bit images (and
32-bit integer images whose values fit 16 bits) by 255/65535, other 32-bit integer images by
255/(2^31 - 1), float images by 255 when their values lie in [0, 1], as they are when they lie in
[0, 255], else from their own minimum..maximum to 0..255; palette, grey, alpha and CMYK images
become RGB as PIL converts them (alpha dropped). Without ``image_size``, images of different sizes
are all brought to the most common size's shorter side in the same way.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import DassError
from .arrays import ImageArrays

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
_TEST_NAMES = ("test", "val")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS
                  and not p.name.startswith("."))


def _class_dirs(folder: Path) -> list[Path]:
    """The sub-folders that are classes: not hidden, holding at least one image file."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and _image_files(p))


def _to_8bit(im):
    """An image of a mode deeper than 8 bits per channel (I;16*, I, F) as an 8-bit grey image,
    scaled as the module docstring says; other modes unchanged."""
    from PIL import Image  # lazy: as in _read_image

    if not (im.mode.startswith("I") or im.mode == "F"):
        return im
    a = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
            lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 1:
            a = a * 255.0
        elif not (lo >= 0 and hi <= 255):
            a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    else:
        a = a * (255.0 / (65535.0 if im.mode.startswith("I;16") or a.max(initial=0) <= 65535 else 2.0 ** 31 - 1))
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _read_image(path: Path, image_size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # lazy: PIL only when reading images; --help path

    try:
        with Image.open(path) as im:
            im = _to_8bit(im).convert("RGB")
            if image_size is not None:
                w, h = im.size
                side = min(w, h)
                left, top = (w - side) // 2, (h - side) // 2
                # the centred square only is resampled: a 1 x 4000 image costs no 16 x 64000 detour
                im = im.resize((image_size, image_size), Image.BILINEAR, box=(left, top, left + side, top + side))
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DassError(f"{path}: not a readable image ({str(e)[:120]})") from None
    except Image.DecompressionBombError as e:  # a header claiming a huge image: refused before decoding
        raise DassError(f"{path}: image refused as too large ({str(e).split('.')[0][:120]})") from None
    except MemoryError:
        raise DassError(f"{path}: image too large to decode in memory") from None


def _stack(files: list[tuple[Path, int]], image_size: int | None, num_classes: int, name: str,
           where: Path) -> ImageArrays:
    if not files:
        raise DassError(f"{where}: no images (extensions: {', '.join(EXTENSIONS)})")
    images = [_read_image(p, image_size) for p, _ in files]
    shapes = [im.shape for im in images]
    if len(set(shapes)) > 1:  # no image_size: the most common size's shorter side (module docstring)
        common = max(set(shapes), key=shapes.count)
        images = [_read_image(p, min(common[:2])) for p, _ in files]
    labels = np.array([c for _, c in files], dtype=np.int64)
    return ImageArrays(np.stack(images), labels, num_classes, name, source=str(where),
                       files=tuple(str(p) for p, _ in files))


def _split_one_folder(files: list[Path], class_name: str, test_fraction: float, seed: int):
    order = np.random.default_rng([seed, zlib.crc32(class_name.encode())]).permutation(len(files))
    n_test = min(int(round(test_fraction * len(files))), len(files) - 1)
    test = sorted(order[:n_test])
    train = sorted(order[n_test:])
    return [files[i] for i in train], [files[i] for i in test]


def class_names(root) -> list[str]:
    """The class names of the image folder at ``root`` in label order (the sub-folders of
    ``root/train`` when it has a test split, else of ``root``), as :func:`load_image_folder` reads them."""
    root = Path(root)
    split = (root / "train").is_dir() and any((root / t).is_dir() for t in _TEST_NAMES)
    return [d.name for d in _class_dirs(root / "train" if split else root)]


def load_image_folder(root, split: str, image_size: int | None = None, test_fraction: float = 0.2,
                      seed: int = 0) -> ImageArrays:
    """Read split "train" or "test" of the image folder at ``root`` (layouts in the module docstring)."""
    root = Path(root)
    if split not in ("train", "test"):
        raise DassError(f"split must be 'train' or 'test', got {split!r}")
    if not root.is_dir():
        raise DassError(f"image folder not found: {root}")
    if not 0.0 < test_fraction < 1.0:
        raise DassError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    name = f"folder:{root}"
    test_dir = next((root / t for t in _TEST_NAMES if (root / t).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        classes = [d.name for d in _class_dirs(root / "train")]
        if not classes:
            raise DassError(f"{root / 'train'}: no images in any class folder")
        where = root / "train" if split == "train" else test_dir
        unknown = sorted({d.name for d in _class_dirs(where)} - set(classes))
        if unknown:
            raise DassError(f"{where}: class folder '{unknown[0]}' does not exist in {root / 'train'}")
        files = [(p, classes.index(d.name)) for d in _class_dirs(where) for p in _image_files(d)]
        return _stack(files, image_size, len(classes), name, where)
    class_dirs = _class_dirs(root)
    if not class_dirs:
        raise DassError(f"{root}: no images in any class folder (expected root/<class>/*.png or root/train, root/test)")
    files = []
    for label, d in enumerate(class_dirs):
        members = _image_files(d)
        train, test = _split_one_folder(members, d.name, test_fraction, seed)
        files += [(p, label) for p in (train if split == "train" else test)]
    return _stack(files, image_size, len(class_dirs), name, root)
