"""Download the original release's datasets, teacher checkpoints and precomputed features.

Source table
    ``sources.tsv`` beside this module (a copy of the original release's URL table), one file a
    row, tab-separated: ``kind  group  relative_path  url``. ``kind`` is ``dataset``,
    ``teacher_checkpoint`` or ``preprocessed``; ``group`` is the dataset name, the checkpoint key
    (``tiny_imagenet-<k>`` or a meta-test dataset name) or ``-``.

Local layout (under the ``root`` each function takes)
    dataset              <root>/<dataset>/<relative_path>          e.g. data/cub/train_images.npy
    teacher_checkpoint   <root>/checkpoint/teacher/<key>/<relative_path>
    preprocessed         <root>/preprocessed.zip, extracted into <root>
    manifest             <root>/.dass_manifest.json (sha256 of every file fetched under <root>)

Mirror layout (``base_url`` argument, else the ``DASS_MIRROR`` environment variable)
    <base_url>/<kind>/<group>/<relative_path>; the group segment is left out where it is ``-``:
        <base_url>/dataset/tiny_imagenet/labels/train_labels.npy
        <base_url>/teacher_checkpoint/tiny_imagenet-3/model_best.pth.tar
        <base_url>/preprocessed/preprocessed.zip
    A folder laid out this way and served by any static HTTP server is a complete mirror.

The transfer itself (resumed, retried, validated, recorded in the manifest) is
:mod:`dass.data.transfer`; the checks of a fetched file are :mod:`dass.data.file_checks`.
"""
from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

from ..errors import DassError
from .transfer import Manifest, Retry, download_file, safe_extract_zip

log = logging.getLogger(__name__)

SOURCES_FILE = Path(__file__).with_name("sources.tsv")
KINDS = ("dataset", "teacher_checkpoint", "preprocessed")
DATASETS = ("tiny_imagenet", "cub", "dtd", "quickdraw", "stanford_cars")
NUM_CLASSES = {"tiny_imagenet": 200, "cub": 200, "dtd": 47, "quickdraw": 345, "stanford_cars": 196}
MIRROR_ENV = "DASS_MIRROR"


# --------------------------------------------------------------------------- source table

@dataclass(frozen=True)
class Source:
    """One row of the source table."""

    kind: str
    group: str
    relative_path: str
    url: str

    def local_path(self, root) -> Path:
        """Where the file lives under ``root`` (layout in the module docstring)."""
        rel = PurePosixPath(self.relative_path)
        if self.kind == "dataset":
            return Path(root) / self.group / rel
        if self.kind == "teacher_checkpoint":
            return Path(root) / "checkpoint" / "teacher" / self.group / rel
        return Path(root) / rel

    def url_for(self, base_url: str | None) -> str:
        """The original URL, or ``<base_url>/<kind>/[<group>/]<relative_path>`` on a mirror."""
        if base_url is None:
            return self.url
        group = [] if self.group == "-" else [quote(self.group)]
        return "/".join([base_url, self.kind, *group, quote(self.relative_path)])


def read_sources(path=SOURCES_FILE) -> list[Source]:
    """Parse the source table; blank lines and lines starting with ``#`` are skipped."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{path}:{lineno}"
        if len(fields) != 4:
            raise DassError(f"{where}: expected 4 tab-separated fields, got {len(fields)}")
        kind, group, rel, url = (f.strip() for f in fields)
        if kind not in KINDS:
            raise DassError(f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        parts = PurePosixPath(rel).parts
        if not rel or rel.startswith("/") or ".." in parts or ".." in PurePosixPath(group).parts:
            raise DassError(f"{where}: path {group}/{rel} must stay inside its folder")
        if urlsplit(url).scheme not in ("http", "https"):
            raise DassError(f"{where}: {url!r} is not an http(s) URL")
        rows.append(Source(kind, group, rel, url))
    return rows


def resolve_base_url(base_url: str | None = None) -> str | None:
    """The mirror to use: ``base_url`` if given, else ``$DASS_MIRROR``, else None (original URLs)."""
    value = base_url if base_url is not None else os.environ.get(MIRROR_ENV, "")
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DassError(f"mirror URL {value!r} must start with http:// or https://")
    return value.rstrip("/")


# --------------------------------------------------------------------------- public downloads

def _select(kind: str, groups) -> list[Source]:
    return [s for s in read_sources() if s.kind == kind and s.group in groups]


def _fetch_all(sources, root, base_url, num_classes=None, **options) -> list[Path]:
    root = Path(root)
    base = resolve_base_url(base_url)
    manifest = Manifest(root)
    return [download_file(s.url_for(base), s.local_path(root), manifest=manifest,
                          num_classes=(num_classes or {}).get(s.group), **options)
            for s in sources]


def download_dataset(name: str, root, base_url: str | None = None, **options) -> list[Path]:
    """Fetch one dataset (or ``'all'``) into ``<root>/<dataset>/``; returns the local files.
    ``options``: keyword options of :func:`download_file` (retry, force)."""
    if name != "all" and name not in DATASETS:
        raise DassError(f"unknown dataset {name!r} (expected all, {', '.join(DATASETS)})")
    names = DATASETS if name == "all" else (name,)
    return _fetch_all(_select("dataset", names), root, base_url, NUM_CLASSES, **options)


def checkpoint_keys() -> list[str]:
    return [s.group for s in read_sources() if s.kind == "teacher_checkpoint"]


def download_checkpoints(root, names=None, base_url: str | None = None, **options) -> list[Path]:
    """Fetch teacher checkpoints (all, or the keys in ``names``) into
    ``<root>/checkpoint/teacher/<key>/model_best.pth.tar``."""
    keys = checkpoint_keys()
    names = keys if not names else list(names)
    unknown = [n for n in names if n not in keys]
    if unknown:
        raise DassError(f"unknown checkpoint key(s) {', '.join(unknown)} "
                        f"(expected some of {', '.join(keys)})")
    return _fetch_all(_select("teacher_checkpoint", names), root, base_url, **options)


def download_preprocessed(root, base_url: str | None = None, extract: bool = True,
                          **options) -> Path:
    """Fetch ``<root>/preprocessed.zip`` and (``extract``) unpack it into ``<root>``."""
    (zip_path,) = _fetch_all(_select("preprocessed", ("-",)), root, base_url, **options)
    if extract:
        files = safe_extract_zip(zip_path, root)
        log.info("extracted %d files from %s into %s", len(files), zip_path, root)
    return zip_path


# --------------------------------------------------------------------------- script plumbing

def add_transfer_arguments(parser: argparse.ArgumentParser, default_root: str, folder: str) -> None:
    """Options shared by the ``download/`` scripts. Without ``--root`` a script downloads where the
    original release's script of the same name does: ``default_root`` under the current directory,
    which puts the files into ``folder`` (said in ``--help`` and in the error of a failed download)."""
    parser.add_argument("--root", type=Path, default=None,
                        help=f"folder to download into (default: {default_root}, under the current "
                             f"directory: the files go into {folder}, as with the original release)")
    parser.set_defaults(default_root=default_root, default_folder=folder)
    parser.add_argument("--base-url", default=None,
                        help=f"mirror laid out as <base-url>/<kind>/<group>/<relative_path> "
                             f"(default: ${MIRROR_ENV}, else the original URLs)")
    parser.add_argument("--retries", type=int, default=4, help="retries per file (default 4)")
    parser.add_argument("--backoff", type=float, default=1.0,
                        help="seconds before the first retry, doubled each time (default 1)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds per request before it counts as failed (default 60)")
    parser.add_argument("--force", action="store_true",
                        help="download again even where a verified file exists")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def transfer_options(args: argparse.Namespace) -> dict:
    """The :func:`download_file` options held by parsed script arguments."""
    if args.retries < 0 or args.backoff < 0 or args.timeout <= 0:
        raise DassError("--retries and --backoff must be >= 0 and --timeout > 0")
    return {"retry": Retry(args.retries, args.backoff, args.timeout), "force": args.force}


def script_download(args: argparse.Namespace, fetch):
    """``fetch(root, **transfer options)`` for a ``download/`` script; returns ``(root, result)``.
    ``root`` is ``--root``, else the script's default; a failure under the default names that folder."""
    options = transfer_options(args)
    root = args.root if args.root is not None else Path(args.default_root)
    try:
        return root, fetch(root, **options)
    except DassError as e:
        if args.root is not None:
            raise
        raise DassError(f"{e} [default folder {args.default_folder} under {Path.cwd()}; --root DIR for "
                        f"another]") from None
