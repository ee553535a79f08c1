#!/usr/bin/env python
"""Download the original precomputed features (preprocessed.zip) and unpack them into <root> (.).

    python download/download_preprocessed.py [--root .] [--no-extract] [--base-url URL]

The zip stays at <root>/preprocessed.zip, where the original README's next step (rm preprocessed.zip)
removes it.

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
    parser = argparse.ArgumentParser(prog="download_preprocessed.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--no-extract", dest="extract", action="store_false",
                        help="keep the zip without unpacking it")
    download.add_transfer_arguments(parser, '.', './preprocessed.zip, unpacked into ./preprocessed/')
    return parser


def main(args: argparse.Namespace) -> None:
    setup_logging()
    root, zip_path = download.script_download(
        args, lambda root, **o: download.download_preprocessed(root, args.base_url, args.extract, **o))
    print(f"{zip_path} ready" + (f", unpacked into {root}" if args.extract else ""))


if __name__ == "__main__":
    run_main(main, parser=build_parser())
