#!/usr/bin/env python
"""Download the original release's datasets into <root>/<dataset>/.

    python download/download_dataset.py --name all --root data [--base-url URL]

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
    parser = argparse.ArgumentParser(prog="download_dataset.py", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="all", choices=("all", *download.DATASETS),
                        help="dataset to fetch (default: all)")
    download.add_transfer_arguments(parser)
    return parser


def main(args: argparse.Namespace) -> None:
    setup_logging()
    paths = download.download_dataset(args.name, args.root, args.base_url,
                                      **download.transfer_options(args))
    print(f"{len(paths)} dataset files ready under {args.root}")


if __name__ == "__main__":
    run_main(main, parser=build_parser())
