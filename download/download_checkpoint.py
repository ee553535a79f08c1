#!/usr/bin/env python
"""Download the original teachers into <root>/checkpoint/teacher/<key>/model_best.pth.tar (root: .).

    python download/download_checkpoint.py [--root .] [--names cub dtd] [--base-url URL]

Errors print one line and exit 2. Mirror layout and resume/retry policy: dass/data/download.py.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if (ROOT / "dass" / "__init__.py").is_file():  # this checkout's dass, before an installed copy
    sys.path.insert(0, str(ROOT))

from dass.cli import run_main, setup_logging
from dass.data import download


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="download_checkpoint.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=None, metavar="KEY",
                        help="checkpoint keys: tiny_imagenet-0..9, cub, dtd, quickdraw, "
                             "stanford_cars (default: all)")
    download.add_transfer_arguments(parser, '.', 'checkpoint/teacher/<key>/')
    return parser


def main(args: argparse.Namespace) -> None:
    setup_logging()
    root, paths = download.script_download(
        args, lambda root, **o: download.download_checkpoints(root, args.names, args.base_url, **o))
    print(f"{len(paths)} teacher checkpoints ready under {root / 'checkpoint' / 'teacher'}")


if __name__ == "__main__":
    run_main(main, parser=build_parser())
