#!/usr/bin/env python
"""scikit-learn's bundled handwritten digits as a dataset in the npy layout (offline: the 1,797
8 x 8 images ship inside the scikit-learn wheel).

    python download/make_sklearn_digits.py --out data/sklearn_digits [--test-per-class 50] [--seed 0]
    bash script/outside_check.sh 'tasks=[{dataset: npy:data/sklearn_digits, split: meta_test}]'

Writes ``<out>/{train,test}_{images,labels}.npy``: uint8 grey images 8 x 8 (the 0..16 levels scaled
to 0..255; the pipeline resizes them to the space's size), int64 labels 0..9. Split: per class,
``--test-per-class`` images drawn at random (``--seed``) for the test split, the others for training.
Needs scikit-learn (``pip install scikit-learn``); nothing else in the project does. Errors print one
line and exit 2.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import dass  # noqa: F401  (installed package)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dass.cli import run_main
from dass.data.arrays import ImageArrays, write_split
from dass.errors import DassError

LEVELS = 16   # load_digits: grey levels 0..16


def split_digits(images, labels, test_per_class: int, seed: int) -> dict[str, ImageArrays]:
    """``images`` N x 8 x 8 in 0..16, ``labels`` N -> {"train", "test"} ImageArrays (uint8 0..255),
    ``test_per_class`` random images of each class in the test split (stable order: by index)."""
    images, labels = np.asarray(images, dtype=np.float64), np.asarray(labels)
    if images.ndim != 3 or len(images) != len(labels) or not len(images):
        raise DassError(f"expected N x H x W images with N labels, got {images.shape} and {labels.shape}")
    if images.min() < 0 or images.max() > LEVELS:
        raise DassError(f"grey levels must lie in 0..{LEVELS}, found {images.min()}..{images.max()}")
    classes, counts = np.unique(labels, return_counts=True)
    if not np.array_equal(classes, np.arange(len(classes))) or counts.min() <= test_per_class:
        raise DassError(f"labels must be 0..K-1 with more than test_per_class={test_per_class} images "
                        f"each; found classes {classes.tolist()} with {counts.min()} images at least")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in classes:
        test[rng.choice(np.flatnonzero(labels == c), test_per_class, replace=False)] = True
    pixels = np.round(images * (255 / LEVELS)).astype(np.uint8)
    return {split: ImageArrays(pixels[keep], labels[keep], len(classes), "sklearn_digits")
            for split, keep in (("train", ~test), ("test", test))}


def write_digits(out, images, labels, test_per_class: int = 50, seed: int = 0) -> dict:
    """Split and write into ``out``; returns the image count per split."""
    out = Path(out)
    counts = {}
    for split, arrays in split_digits(images, labels, test_per_class, seed).items():
        write_split(out.parent, out.name, split, arrays)
        counts[split] = len(arrays)
    return counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make_sklearn_digits.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder to write (npy layout)")
    p.add_argument("--test-per-class", type=int, default=50, help="test images per class (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def main(args: argparse.Namespace) -> None:
    if args.test_per_class < 1:
        raise DassError("--test-per-class must be at least 1")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DassError("scikit-learn is not installed (pip install scikit-learn; only this script needs it)") \
            from None
    digits = load_digits()
    counts = write_digits(args.out, digits.images, digits.target, args.test_per_class, args.seed)
    print(f"{args.out}: {counts['train']} train / {counts['test']} test images, 10 classes, 8 x 8 "
          f"(dataset name npy:{args.out})")


if __name__ == "__main__":
    run_main(main, parser=build_parser())
