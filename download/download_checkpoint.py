#!/usr/bin/env python
"""Download the original teachers into <root>/checkpoint/teacher/<key>/model_best.pth.tar.

    python download/download_checkpoint.py --root . [--names cub dtd] [--base-url URL]

Errors print one line and exit 2. Mirror layout and resume/retry policy: dass/data/download.py.
"""
import argparse
import sys
from pathlib import Path

try:
    import dass  # noqa: F401  (installed package)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dass.cli import run_main, setup_logging
from dass.data import download


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="download_checkpoint.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=None, metavar="KEY",
                        help="checkpoint keys: tiny_imagenet-0..9, cub, dtd, quickdraw, "
                             "stanford_cars (default: all)")
    download.add_transfer_arguments(parser)
    return parser


def main(args: argparse.Namespace) -> None:
    setup_logging()
    paths = download.download_checkpoints(args.root, args.names, args.base_url,
                                          **download.transfer_options(args))
    print(f"{len(paths)} teacher checkpoints ready under {args.root / 'checkpoint' / 'teacher'}")


if __name__ == "__main__":
    run_main(main, parser=build_parser())
