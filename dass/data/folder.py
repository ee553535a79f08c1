"""Any torchvision-style image folder read into :class:`ImageArrays`.

Accepted layouts (class names = sub-folder names, sorted; label = position in that order)::

    root/train/<class>/*.png|jpg|...   and   root/test/<class>/...   (``val`` is accepted for test)
    root/<class>/*.png|jpg|...         one folder: each class's files (sorted by name) are shuffled
                                       with np.random.default_rng([seed, crc32(class name)]) and the
                                       first round(test_fraction * n) go to "test" (at least one
                                       stays in "train").

Images are read with PIL, converted to RGB, resized so the shorter side is ``image_size``
(bilinear) and centre-cropped to ``image_size`` x ``image_size``. Without ``image_size`` every image
must already have one common size.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import DassError
from .arrays import ImageArrays

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
_TEST_NAMES = ("test", "val")


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _read_image(path: Path, image_size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # lazy: PIL only when reading images; --help path

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if image_size is not None:
                w, h = im.size
                scale = image_size / min(w, h)
                nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
                im = im.resize((nw, nh), Image.BILINEAR)
                left, top = (nw - image_size) // 2, (nh - image_size) // 2
                im = im.crop((left, top, left + image_size, top + image_size))
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
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DassError(f"{where}: images have different sizes {sorted(shapes)[:3]}; give image_size")
    labels = np.array([c for _, c in files], dtype=np.int64)
    return ImageArrays(np.stack(images), labels, num_classes, name, source=str(where))


def _split_one_folder(files: list[Path], class_name: str, test_fraction: float, seed: int):
    order = np.random.default_rng([seed, zlib.crc32(class_name.encode())]).permutation(len(files))
    n_test = min(int(round(test_fraction * len(files))), len(files) - 1)
    test = sorted(order[:n_test])
    train = sorted(order[n_test:])
    return [files[i] for i in train], [files[i] for i in test]


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
            raise DassError(f"{root / 'train'}: no class folders")
        where = root / "train" if split == "train" else test_dir
        unknown = sorted({d.name for d in _class_dirs(where)} - set(classes))
        if unknown:
            raise DassError(f"{where}: class folder '{unknown[0]}' does not exist in {root / 'train'}")
        files = [(p, classes.index(d.name)) for d in _class_dirs(where) for p in _image_files(d)]
        return _stack(files, image_size, len(classes), name, where)
    class_dirs = _class_dirs(root)
    if not class_dirs:
        raise DassError(f"{root}: no class folders (expected root/<class>/*.png or root/train, root/test)")
    files = []
    for label, d in enumerate(class_dirs):
        members = _image_files(d)
        if not members:
            continue
        train, test = _split_one_folder(members, d.name, test_fraction, seed)
        files += [(p, label) for p in (train if split == "train" else test)]
    return _stack(files, image_size, len(class_dirs), name, root)
