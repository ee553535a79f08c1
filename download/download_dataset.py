#!/usr/bin/env python
"""Download the original release's datasets into <root>/<dataset>/ (default root: data).

    python download/download_dataset.py --name all [--root data] [--base-url URL]

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
    parser = argparse.ArgumentParser(prog="download_dataset.py", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="all", choices=("all", *download.DATASETS),
                        help="dataset to fetch (default: all)")
    download.add_transfer_arguments(parser, 'data', 'data/<dataset>/')
    return parser


def main(args: argparse.Namespace) -> None:
    setup_logging()
    root, paths = download.script_download(
        args, lambda root, **o: download.download_dataset(args.name, root, args.base_url, **o))
    print(f"{len(paths)} dataset files ready under {root}")


if __name__ == "__main__":
    run_main(main, parser=build_parser())
