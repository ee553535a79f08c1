"""``python -m dass.data``: generate, describe and validate datasets.

* ``glyphs --config configs/data/glyphs.yaml [out_root=data] [key=value ...]``: generate the glyph
  family (datasets already generated with the same config are skipped); prints a JSON summary.
* ``describe --root DIR``: JSON of the datasets found under DIR (classes, split sizes, image shape).
* ``validate NAME --root DIR``: load both splits of dataset NAME with every check; prints JSON.

Bad input prints one line and exits 2 (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from ..cli import run_main
from ..config_help import attach
from ..errors import DassError
from . import glyphs
from .glyph_config import GlyphsConfig, load_config
from .arrays import DATA_SPLITS, check_splits
from .registry import dataset_info, list_datasets, load_dataset


def _glyphs(args) -> int:
    cfg = load_config(args.config, args.overrides)
    print(json.dumps(glyphs.generate_family(cfg, progress=not args.quiet), indent=2))
    return 0


def _describe(args) -> int:
    names = list_datasets(args.root)
    print(json.dumps({"root": args.root, "datasets": [dataset_info(n, args.root) for n in names]}, indent=2))
    return 0


def _validate(args) -> int:
    train, test = (load_dataset(args.name, args.root, s) for s in DATA_SPLITS)
    check_splits(train, test)
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DassError(f"{args.name}: train images are {train.images.shape[1:]} but test "
                        f"{test.images.shape[1:]}")
    out = {"name": args.name, "ok": True, "num_classes": train.num_classes,
           "image_shape": list(train.images.shape[1:])}
    for split, arrays in zip(DATA_SPLITS, (train, test)):
        per_class = np.bincount(arrays.labels, minlength=arrays.num_classes)
        out[split] = {"images": len(arrays), "per_class_min": int(per_class.min()),
                      "per_class_max": int(per_class.max()),
                      "pixel_mean": round(float(arrays.images.mean()) / 255.0, 4)}
    print(json.dumps(out, indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dass.data", description="Generate, describe and validate datasets "
                                "(glyph config keys: python -m dass.data glyphs --help).")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("glyphs", help="generate the built-in glyph dataset family")
    g.add_argument("--config", required=True, help="glyph family YAML (configs/data/glyphs.yaml)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("overrides", nargs="*", help="key=value overrides (out_root=DIR, workers=2, only=[a,b])")
    g.set_defaults(fn=_glyphs)
    attach(g, GlyphsConfig)
    d = sub.add_parser("describe", help="JSON of the datasets under a root folder")
    d.add_argument("--root", required=True)
    d.set_defaults(fn=_describe)
    v = sub.add_parser("validate", help="load one dataset with every check")
    v.add_argument("name", help="dataset name (cub, tiny_imagenet-3, glyphs/latin, folder:PATH, npy:PATH ...)")
    v.add_argument("--root", required=True)
    v.set_defaults(fn=_validate)
    for s in (g, d, v):
        s.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def main(argv=None) -> None:
    run_main(lambda args: args.fn(args), argv, _parser())


if __name__ == "__main__":
    main()
