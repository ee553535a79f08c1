#!/usr/bin/env python
"""Download the original precomputed features (preprocessed.zip) and unpack them into <root>.

    python download/download_preprocessed.py --root . [--no-extract] [--base-url URL]

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
    parser = argparse.ArgumentParser(prog="download_preprocessed.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--no-extract", dest="extract", action="store_false",
                        help="keep the zip without unpacking it")
    download.add_transfer_arguments(parser)
    return parser


def main(args: argparse.Namespace) -> None:
    setup_logging()
    zip_path = download.download_preprocessed(args.root, args.base_url, args.extract,
                                              **download.transfer_options(args))
    print(f"{zip_path} ready" + (f", unpacked into {args.root}" if args.extract else ""))


if __name__ == "__main__":
    run_main(main, parser=build_parser())
