"""The built-in offline dataset family "glyphs": one dataset per writing system or symbol block.

Each class is one Unicode code point; each image renders it with PIL from a font file that covers
it, with per-image variation (font, size, rotation, shear, translation, stroke width, ink dropout,
blur, pixel noise, foreground/background colours and contrast, background texture, distractor
strokes). How strong the variation is is set per dataset (``configs/data/glyphs.yaml``), so the
members differ clearly in difficulty.

Classes of a dataset: its code points in the listed order, keeping one only when at least one of
the dataset's fonts maps it in its cmap AND renders it with ink that differs from the font's
.notdef (tofu) glyph; a code point whose ink (cropped) equals an earlier class's is dropped
(indistinguishable); at most ``max_classes`` are kept. Each image picks uniformly among the fonts
that passed for its class.

Output, per dataset ``<out_root>/<family>/<name>/`` (``family`` is ``glyphs`` for the built-in family,
``outside`` for the probe sets of ``configs/data/outside.yaml``; the registry loads it as
``<family>/<name>``): ``{train,test}_images.npy`` (uint8,
N x S x S x 3, S = ``image_size``, class-major order), ``{train,test}_labels.npy`` (int64) and
``meta.json`` (classes as code points, seed, resolved config, config hash), written last: a
dataset whose ``meta.json`` holds the same config hash is skipped (resumable).

Determinism: image i of class c (code point) in split s of dataset d is drawn with
``np.random.default_rng([seed, crc32(d), s, c, i])`` (s = 0 train, 1 test); nothing uses a global
RNG, so generating twice (any number of workers) gives identical bytes.

Rendering: glyphs are drawn at ``render_scale`` x the output size and box-downsampled. Font paths
are files or globs; ``{mpl}`` expands to matplotlib's bundled font folder (DejaVu, STIX, ...), so
no system font is needed.

The config is :mod:`dass.data.glyph_config`, fonts and classes :mod:`dass.data.glyph_fonts`, the
rendering of one image :mod:`dass.data.glyph_render`; this module plans and writes the datasets.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as cfgmod
from ..hashing import json_sha256
from ..io import atomic_write_json
from .arrays import ImageArrays, write_split
from .glyph_config import GlyphSet, GlyphsConfig, Variation
from .glyph_fonts import GlyphClass, resolve_classes, resolve_fonts
from .glyph_render import render_class

GENERATOR_VERSION = 1


@dataclass
class _Plan:
    spec: GlyphSet
    variation: Variation
    classes: list[GlyphClass]
    counts: tuple[int, int]          # images per class: train, test
    folder: Path
    config_hash: str

    def tasks(self, cfg: GlyphsConfig):
        key = zlib.crc32(self.spec.name.encode())
        for split_id, count in enumerate(self.counts):
            for cls in self.classes:
                yield (cls, self.variation, cfg.seed, key, split_id, count, cfg.image_size, cfg.render_scale)

    @property
    def num_images(self) -> int:
        return len(self.classes) * sum(self.counts)


def _resolved_spec(cfg: GlyphsConfig, spec: GlyphSet) -> dict:
    d = cfgmod.to_dict(spec)
    d["variation"] = cfgmod.to_dict(cfg.variation_of(spec))
    d["train_per_class"] = spec.train_per_class or cfg.train_per_class
    d["test_per_class"] = spec.test_per_class or cfg.test_per_class
    return d


def config_hash(cfg: GlyphsConfig, spec: GlyphSet) -> str:
    """Hash of everything that determines a dataset's bytes (config, seed, sizes, font files)."""
    fonts = resolve_fonts(spec.fonts, f"glyph dataset '{spec.name}'")
    payload = {"version": GENERATOR_VERSION, "seed": cfg.seed, "image_size": cfg.image_size,
               "render_scale": cfg.render_scale, "spec": _resolved_spec(cfg, spec),
               "fonts": [[Path(f).name, Path(f).stat().st_size] for f in fonts]}
    return json_sha256(payload, compact=False)[:16]


def is_current(folder: Path, digest: str) -> bool:
    meta = folder / "meta.json"
    files = [folder / f"{s}_{k}.npy" for s in ("train", "test") for k in ("images", "labels")]
    if not meta.is_file() or not all(f.is_file() for f in files):
        return False
    try:
        return json.loads(meta.read_text()).get("config_hash") == digest
    except (json.JSONDecodeError, OSError):
        return False


def _write_dataset(cfg: GlyphsConfig, plan: _Plan, blocks: list[np.ndarray]) -> None:
    n_cls = len(plan.classes)
    for split_id, split in enumerate(("train", "test")):
        images = np.concatenate(blocks[split_id * n_cls:(split_id + 1) * n_cls])
        labels = np.repeat(np.arange(n_cls, dtype=np.int64), plan.counts[split_id])
        write_split(plan.folder.parent, plan.folder.name,
                    split, ImageArrays(images, labels, n_cls, f"{cfg.family}/{plan.spec.name}"))
    atomic_write_json(plan.folder / "meta.json", {
        "name": plan.spec.name, "family": cfg.family, "generator_version": GENERATOR_VERSION, "config_hash": plan.config_hash,
        "seed": cfg.seed, "image_size": cfg.image_size, "render_scale": cfg.render_scale,
        "num_classes": n_cls, "train_per_class": plan.counts[0], "test_per_class": plan.counts[1],
        "classes": [{"code_point": f"U+{c.code_point:04X}", "char": chr(c.code_point),
                     "fonts": [Path(f).name for f in c.fonts]} for c in plan.classes],
        "config": _resolved_spec(cfg, plan.spec)})


def plan_family(cfg: GlyphsConfig) -> tuple[list[_Plan], list[str]]:
    """(datasets to generate, names already current) -- validates every dataset before rendering."""
    todo, current = [], []
    for spec in cfg.selected():
        folder = Path(cfg.out_root) / cfg.family / spec.name
        digest = config_hash(cfg, spec)
        if is_current(folder, digest):
            current.append(spec.name)
            continue
        counts = (spec.train_per_class or cfg.train_per_class, spec.test_per_class or cfg.test_per_class)
        todo.append(_Plan(spec, cfg.variation_of(spec), resolve_classes(spec), counts, folder, digest))
    return todo, current


def generate_family(cfg: GlyphsConfig, progress: bool = True) -> dict:
    """Generate every selected dataset not yet current; returns a summary (names, counts, seconds)."""
    from tqdm import tqdm  # lazy: tqdm (~35 ms) only when generating; --help path

    t0 = time.perf_counter()
    todo, current = plan_family(cfg)
    tasks = [t for plan in todo for t in plan.tasks(cfg)]
    bar = tqdm(total=sum(p.num_images for p in todo), unit="img", desc="glyphs", disable=not progress)
    pool = None
    if cfg.workers > 1 and len(tasks) > 1:
        import multiprocessing  # lazy: only with workers > 1 (~8 ms); --help path
        pool = multiprocessing.get_context().Pool(min(cfg.workers, len(tasks)))
    try:
        results = pool.imap(render_class, tasks, chunksize=2) if pool else map(render_class, tasks)
        for plan in todo:
            bar.set_postfix_str(plan.spec.name)
            blocks = []
            for _ in range(2 * len(plan.classes)):
                blocks.append(next(results))
                bar.update(len(blocks[-1]))
            _write_dataset(cfg, plan, blocks)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return {"out_root": str(Path(cfg.out_root) / cfg.family),
            "generated": [p.spec.name for p in todo], "skipped": current,
            "classes": {p.spec.name: len(p.classes) for p in todo},
            "images": sum(p.num_images for p in todo), "seconds": round(time.perf_counter() - t0, 2)}
