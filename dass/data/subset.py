"""Class-subset datasets: a chosen set of classes drawn from one or several datasets.

Name scheme (loadable by :func:`dass.data.registry.load_dataset` like any other name; nothing is
written to disk, the name itself says what the dataset holds)::

    subset:<source>[<classes>]+<source>[<classes>]+...

``<source>`` is any registered dataset name (not itself a subset), ``<classes>`` a comma list of
class indices of that source or ``a-b`` ranges (inclusive), e.g.
``subset:glyphs/armenian[0-2,7]+glyphs/greek[5]`` holds 5 classes. Both splits ("train", "test")
are the sources' own splits restricted to the chosen classes; labels are re-indexed to the position
of the class in the name (here armenian 0, 1, 2, 7 -> 0, 1, 2, 3 and greek 5 -> 4). Images of every
source are resized to the first source's size when they differ.

Class identity (:func:`dass.data.registry.class_identities`): a class is ``(source dataset, class index)``, except
that a glyph class whose ``meta.json`` gives a Unicode code point is identified by that code point,
so the same character rendered by two glyph datasets is one class. Subset classes keep the identity
of their source class.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import DassError
from .arrays import ImageArrays, resize_images
from .glyph_config import FAMILIES as GLYPH_FAMILIES

PREFIX = "subset:"
_PART = re.compile(r"([^\[\]+]+)\[([0-9,\-]+)\]")


def _parse_indices(text: str, where: str) -> list[int]:
    out: list[int] = []
    for item in text.split(","):
        lo, sep, hi = item.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise DassError(f"{where}: bad class list '{text}' (use e.g. 0-3,7)")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise DassError(f"{where}: bad class range '{item}'")
        out += range(a, b + 1)
    return out


def parse_subset(spec: str) -> list[tuple[str, list[int]]]:
    """``'glyphs/a[0-2]+glyphs/b[5]'`` (the part after ``subset:``) -> ``[('glyphs/a', [0, 1, 2]), ('glyphs/b', [5])]``."""
    where = f"dataset '{PREFIX}{spec}'"
    parts = spec.split("]+")
    parts = [p + "]" for p in parts[:-1]] + parts[-1:]
    out = []
    for p in parts:
        m = _PART.fullmatch(p)
        if m is None:
            raise DassError(f"{where}: expected <dataset>[<classes>]+..., could not read '{p}'")
        src = m.group(1)
        if src.startswith(PREFIX):
            raise DassError(f"{where}: a subset cannot draw from another subset")
        out.append((src, _parse_indices(m.group(2), where)))
    seen = [(s, i) for s, idx in out for i in idx]
    if len(set(seen)) != len(seen):
        raise DassError(f"{where}: a class is listed twice")
    return out


def _ranges(idx: list[int]) -> str:
    idx = sorted(idx)
    runs, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None]):
        if b != a + 1:
            runs.append(str(a) if a == start else f"{start}-{a}")
            start = b
    return ",".join(runs)


def subset_name(classes: list[tuple[str, int]]) -> str:
    """The canonical name of the subset of ``(source, class index)`` pairs: sources in first-seen
    order, each source's classes sorted (this order defines the re-indexed labels)."""
    by_src: dict[str, list[int]] = {}
    for src, i in classes:
        by_src.setdefault(src, []).append(int(i))
    return PREFIX + "+".join(f"{src}[{_ranges(idx)}]" for src, idx in by_src.items())


def load_subset(spec: str, root, split: str, load_source) -> ImageArrays:
    """The images of subset ``spec`` (the name after the prefix); ``load_source(name, root, split)``
    loads a source dataset (the registry passes its cached loader, so this module does not import
    the registry that registers it)."""
    parts = parse_subset(spec)
    images, labels, size = [], [], None
    offset = 0
    for src, idx in parts:
        arr = load_source(src, str(root), split)
        bad = [i for i in idx if i >= arr.num_classes]
        if bad:
            raise DassError(f"dataset '{PREFIX}{spec}': {src} has {arr.num_classes} classes, no class {bad[0]}")
        lut = np.full(arr.num_classes, -1, dtype=np.int64)
        lut[idx] = offset + np.arange(len(idx))
        keep = lut[arr.labels] >= 0
        imgs = arr.images[keep]
        size = size or arr.image_size[0]
        if arr.image_size != (size, size):
            imgs = resize_images(imgs, size)
        images.append(imgs)
        labels.append(lut[arr.labels[keep]])
        offset += len(idx)
    return ImageArrays(np.concatenate(images), np.concatenate(labels), offset, PREFIX + spec,
                       source=f"{PREFIX}{spec} ({split})")


def glyph_code_points(root, name: str) -> list[str] | None:
    """The code point of each class of glyph dataset ``name`` (``<family>/<member>``) from its
    meta.json (None if absent)."""
    path = Path(root) / name / "meta.json"
    if not path.is_file():
        return None
    try:
        classes = json.loads(path.read_text())["classes"]
        return [str(c["code_point"]) for c in classes]
    except (ValueError, KeyError, TypeError):
        raise DassError(f"{path}: cannot read the classes' code points") from None


def class_identity(root, source: str, index: int, _cp_cache: dict | None = None) -> tuple:
    """The identity of class ``index`` of dataset ``source`` (see module doc)."""
    if source.partition("/")[0] in GLYPH_FAMILIES:
        cache = _cp_cache if _cp_cache is not None else {}
        if source not in cache:
            cache[source] = glyph_code_points(root, source)
        cps = cache[source]
        if cps is not None and index < len(cps):
            return ("code_point", cps[index])
    return (source, int(index))
