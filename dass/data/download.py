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

Transfer
    Streamed in 1 MiB chunks into ``<target>.part``. A later attempt asks for the missing bytes
    with an HTTP Range request: a 206 answer is appended, a 200 answer restarts from byte zero.
    Connection errors, timeouts, HTTP 408/429 and 5xx are retried with exponential backoff
    (``backoff * 2**(n-1)`` seconds before the n-th retry; the count resets whenever an attempt
    brought new bytes). Other HTTP errors are permanent. The ``.part`` file becomes the target
    (``os.replace``) only after validation; a file that fails validation is removed.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import stat
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote, urlsplit

import numpy as np
import requests
import urllib3
from tqdm import tqdm

from ..errors import DassError
from ..hashing import file_sha256
from ..io import atomic_write_json, read_json, safe_torch_load

log = logging.getLogger(__name__)

SOURCES_FILE = Path(__file__).with_name("sources.tsv")
KINDS = ("dataset", "teacher_checkpoint", "preprocessed")
DATASETS = ("tiny_imagenet", "cub", "dtd", "quickdraw", "stanford_cars")
NUM_CLASSES = {"tiny_imagenet": 200, "cub": 200, "dtd": 47, "quickdraw": 345, "stanford_cars": 196}
SPLIT_NPZ_KEYS = ("label_list", "idx_train", "idx_valid")
MIRROR_ENV = "DASS_MIRROR"
MANIFEST_NAME = ".dass_manifest.json"
CHUNK_BYTES = 1 << 20
RETRYABLE_STATUS = frozenset({408, 429})


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


# --------------------------------------------------------------------------- manifest

class Manifest:
    """sha256 of every file fetched under ``root``, kept in ``<root>/.dass_manifest.json``:
    ``{"files": {"<path relative to root, posix>": {"sha256": hex, "bytes": int, "url": str}}}``.
    Rewritten atomically after each new entry."""

    def __init__(self, root):
        self.root = Path(root)
        self.path = self.root / MANIFEST_NAME
        data = read_json(self.path) if self.path.is_file() else {"files": {}}
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise DassError(f"{self.path}: not a download manifest (no 'files' table); delete it")
        self.files: dict = data["files"]

    def key(self, target) -> str:
        try:
            return Path(target).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            raise DassError(f"{target} lies outside the manifest's folder {self.root}") from None

    def entry(self, target) -> dict | None:
        return self.files.get(self.key(target))

    def record(self, target, sha256: str, url: str) -> None:
        self.files[self.key(target)] = {"sha256": sha256, "bytes": Path(target).stat().st_size,
                                        "url": url}
        atomic_write_json(self.path, {"files": self.files})


# --------------------------------------------------------------------------- validation

class _BadFile(Exception):
    """What is wrong with a downloaded file (turned into a DassError naming the file)."""


@dataclass(frozen=True)
class NpyHeader:
    """The header of a ``.npy`` file; the array data starts at byte ``data_offset``."""

    version: tuple
    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    data_offset: int

    @property
    def data_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def read_npy_header(path) -> NpyHeader:
    """Parse magic, version, dtype, shape and order of a ``.npy`` file (versions 1.0-3.0)."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"unsupported format version {version}")
            # 3.0 differs from 2.0 only by allowing utf-8 field names, decoded the same for ASCII
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran_order, dtype = reader(f)
        except (ValueError, SyntaxError) as e:
            raise _BadFile(f"not a valid .npy header ({str(e).splitlines()[0]})") from None
        return NpyHeader(version, dtype, tuple(shape), bool(fortran_order), f.tell())


def _split_and_role(name: str) -> tuple[str, str] | None:
    """``'train_images.npy'`` -> ``('train', 'images')``; None for other names."""
    stem = name.removesuffix(".npy")
    for role in ("images", "labels"):
        if stem.endswith("_" + role):
            return stem[: -len(role) - 1], role
    return None


def _counterparts(target: Path, split: str, role: str) -> list[Path]:
    """Where the other half of a split may lie (Tiny-ImageNet keeps labels under ``labels/``)."""
    other = f"{split}_{'labels' if role == 'images' else 'images'}.npy"
    if role == "images":
        return [target.parent / other, target.parent / "labels" / other]
    places = [target.parent / other]
    if target.parent.name == "labels":
        places.append(target.parent.parent / other)
    return places


def _check_npy(data_path: Path, target: Path, num_classes: int | None) -> None:
    header = read_npy_header(data_path)
    if header.dtype.hasobject:
        raise _BadFile("holds Python objects (needs pickle); refused")
    size = data_path.stat().st_size
    expected = header.data_offset + header.data_bytes
    if size != expected:
        raise _BadFile(f"{size} bytes, but its header ({header.dtype}, shape {header.shape}) "
                       f"needs {expected}")
    split_role = _split_and_role(target.name)
    if split_role is None:
        return
    split, role = split_role
    if role == "images" and (header.dtype != np.uint8 or len(header.shape) not in (3, 4)):
        raise _BadFile(f"images must be uint8 N x H x W [x C], got {header.dtype} {header.shape}")
    if role == "labels":
        if header.dtype.kind not in "iu" or len(header.shape) != 1:
            raise _BadFile(f"labels must be 1-D integers, got {header.dtype} {header.shape}")
        if num_classes is not None:
            _check_label_values(np.load(data_path, allow_pickle=False), split, num_classes)
    for other in _counterparts(target, split, role):
        if other.is_file():
            other_len = read_npy_header(other).shape[0]
            if other_len != header.shape[0]:
                raise _BadFile(f"{header.shape[0]} {role}, but {other} holds {other_len}")


def _check_label_values(labels: np.ndarray, split: str, num_classes: int) -> None:
    """Labels index classes 0..num_classes-1; the training split covers every class."""
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise _BadFile(f"labels span {labels.min()}..{labels.max()}, "
                       f"expected 0..{num_classes - 1}")
    present = np.unique(labels).size
    if split == "train" and present != num_classes:
        raise _BadFile(f"training labels cover {present} classes, expected {num_classes}")


def _check_zip(data_path: Path) -> set[str]:
    """Every member passes its CRC check and is one :func:`safe_extract_zip` would extract into
    the archive's folder (so a zip that extraction refuses is never recorded as verified);
    returns the member names."""
    dest = data_path.parent.resolve()
    try:
        with zipfile.ZipFile(data_path) as zf:
            bad = zf.testzip()
            names = set(zf.namelist())
            unsafe = next(((i.filename, r) for i in zf.infolist() if (r := _unsafe_reason(i, dest))), None)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
        raise _BadFile(f"not a readable zip archive ({e})") from None
    if bad is not None:
        raise _BadFile(f"member {bad!r} fails its CRC check")
    if unsafe is not None:
        raise _BadFile(f"member {unsafe[0]!r} {unsafe[1]}: extraction would refuse it")
    return names


def _check_split_npz(data_path: Path) -> None:
    """A Tiny-ImageNet split file: an intact npz holding label_list, idx_train, idx_valid."""
    names = _check_zip(data_path)
    missing = [k for k in SPLIT_NPZ_KEYS if f"{k}.npy" not in names]
    if missing:
        raise _BadFile(f"split file lacks {', '.join(missing)}")


def _check_checkpoint(data_path: Path) -> None:
    try:
        safe_torch_load(data_path)
    except DassError as e:
        raise _BadFile(str(e)) from None


def validate_file(data_path, target=None, *, num_classes: int | None = None) -> None:
    """Check the bytes at ``data_path`` as the file ``target`` (its name picks the checks; its
    folder holds the other half of an images/labels pair). Raises DassError naming ``target``.

    ``.npy``: header parses and the size is header + data; ``*_images.npy`` uint8 with 3 or 4
    dims; ``*_labels.npy`` 1-D integers in 0..num_classes-1 (train: every class present); the
    images and labels of a split present side by side have the same length. ``.npz``: intact
    archive holding the split keys. ``.zip``: every member passes its CRC. ``.pth.tar``/``.pth``/
    ``.pt``: loads with ``torch.load(weights_only=True)``.
    """
    data_path = Path(data_path)
    target = Path(target) if target is not None else data_path
    name = target.name
    try:
        if name.endswith(".npy"):
            _check_npy(data_path, target, num_classes)
        elif name.endswith(".npz"):
            _check_split_npz(data_path)
        elif name.endswith(".zip"):
            _check_zip(data_path)
        elif name.endswith((".pth.tar", ".pth", ".pt")):
            _check_checkpoint(data_path)
    except _BadFile as e:
        raise DassError(f"{target}: {e}") from None


# --------------------------------------------------------------------------- transfer

class _Transient(Exception):
    """A failure worth retrying: dropped connection, timeout, HTTP 408/429/5xx."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``'bytes 10-99/100'`` -> (10, 100); ``'bytes */100'`` -> (None, 100)."""
    try:
        _unit, spec = value.split(" ", 1)
        span, total = spec.split("/", 1)
        start = None if span == "*" else int(span.split("-", 1)[0])
        return start, (None if total == "*" else int(total))
    except (AttributeError, ValueError):
        return None, None


def _part_size(part: Path) -> int:
    return part.stat().st_size if part.exists() else 0


def _fetch_once(url: str, part: Path, timeout: float, label: str) -> None:
    """One request appending the bytes ``part`` lacks (the whole file when it is absent).
    The ``.part`` file is created only once the server has answered with data."""
    offset = _part_size(part)
    headers = {"Accept-Encoding": "identity"}  # byte ranges must address the file itself
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
            status = r.status_code
            if status == 416 and offset:
                _, total = _content_range(r.headers.get("Content-Range"))
                if total == offset:
                    return  # an earlier attempt already got every byte
                part.unlink()
                raise _Transient(f"HTTP 416 for bytes {offset}- (file size {total}); restarting")
            if status in RETRYABLE_STATUS or status >= 500:
                raise _Transient(f"HTTP {status} {r.reason}")
            if status not in (200, 206):
                target = part.with_name(part.name.removesuffix(".part"))
                raise DassError(f"download failed: {url} -> {target}: HTTP {status} {r.reason}")
            if status == 206:
                start, total = _content_range(r.headers.get("Content-Range"))
                if start != offset:
                    part.unlink()
                    raise _Transient(f"server resumed at byte {start}, not {offset}; restarting")
                mode = "ab"
            else:
                offset, mode = 0, "wb"
                length = r.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            part.parent.mkdir(parents=True, exist_ok=True)
            with open(part, mode) as f, tqdm(total=total, initial=offset, desc=label, unit="B",
                                             unit_scale=True, unit_divisor=1024) as bar:
                # read1 hands over whatever arrived, so a dropped connection loses no bytes
                while chunk := r.raw.read1(CHUNK_BYTES, decode_content=True):
                    f.write(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())
    except (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError) as e:
        raise _Transient(_transport_error(e)) from None
    size = _part_size(part)
    if total is not None and size != total:
        raise _Transient(f"transfer stopped at {size} of {total} bytes")


def _transport_error(e: Exception) -> str:
    """A short cause of a connection failure: requests nests the socket's own message (``[Errno 111]
    Connection refused``) deep in a long repr; that message is what a user needs."""
    text = str(e).splitlines()[0] if str(e) else ""
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return f"{type(e).__name__}: {found[-1].strip()}"
    return f"{type(e).__name__}: {text[:200]}"


def _transfer(url: str, part: Path, *, retries: int, backoff: float, timeout: float,
              label: str) -> None:
    """Fetch ``url`` into ``part``, resuming and retrying (policy in the module docstring)."""
    failures = 0
    while True:
        before = _part_size(part)
        try:
            _fetch_once(url, part, timeout, label)
            return
        except _Transient as e:
            failures = 1 if _part_size(part) > before else failures + 1
            if failures > retries:
                keep = f"; run again to resume from {part}" if part.exists() else ""
                target = part.with_name(part.name.removesuffix(".part"))
                raise DassError(f"download failed: {url} -> {target}: {e} (gave up after {retries} "
                                f"retries){keep}") from None
            delay = backoff * 2 ** (failures - 1)
            log.warning("%s: %s; retry %d/%d in %.2g s", label, e, failures, retries, delay)
            time.sleep(delay)


def _check_existing(target: Path, url: str, expected: str | None, validate: bool,
                    manifest: Manifest | None, num_classes: int | None) -> None:
    """An existing file must match its manifest entry; one without an entry is validated and
    recorded."""
    entry = manifest.entry(target) if manifest is not None else None
    digest = file_sha256(target) if (manifest is not None or expected) else None
    if entry is not None and digest != entry.get("sha256"):
        raise DassError(f"{target}: sha256 {digest} differs from the one recorded at download "
                        f"({entry.get('sha256')}) in {manifest.path}; delete the file and "
                        f"download it again, or pass --force")
    if entry is None and validate:
        try:
            validate_file(target, num_classes=num_classes)
        except DassError as e:
            raise DassError(f"{e}; delete the file and download it again, or pass --force") from None
    if expected and digest != expected.lower():
        raise DassError(f"{target}: sha256 {digest} differs from the expected {expected}; "
                        f"delete the file and download it again, or pass --force")
    if entry is None and manifest is not None:
        manifest.record(target, digest, url)


def download_file(url: str, target, *, retries: int = 4, backoff: float = 1.0,
                  timeout: float = 60.0, expected: str | None = None, validate: bool = True,
                  manifest: Manifest | None = None, num_classes: int | None = None,
                  force: bool = False) -> Path:
    """Download ``url`` to ``target`` and return ``target``.

    An existing ``target`` is not fetched again: it is checked against ``manifest`` (or
    validated and recorded there when it has no entry). ``force`` re-downloads it.
    ``expected``: sha256 hex the file must have. ``timeout``: seconds per request (connect and
    between bytes). ``num_classes``: label range for ``*_labels.npy``. Permanent HTTP errors,
    exhausted retries and failed validation raise DassError; the target is then untouched.
    """
    target = Path(target)
    part = target.with_name(target.name + ".part")
    if target.exists() and not force:
        _check_existing(target, url, expected, validate, manifest, num_classes)
        log.info("%s: present and verified", target)
        return target
    if force:
        part.unlink(missing_ok=True)
    _transfer(url, part, retries=retries, backoff=backoff, timeout=timeout, label=target.name)
    try:
        if validate:
            validate_file(part, target, num_classes=num_classes)
        digest = file_sha256(part)
        if expected and digest != expected.lower():
            raise DassError(f"{target}: sha256 {digest} differs from the expected {expected}")
    except DassError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    if manifest is not None:
        manifest.record(target, digest, url)
    return target


# --------------------------------------------------------------------------- zip extraction

def _unsafe_reason(info: zipfile.ZipInfo, dest: Path) -> str | None:
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "climbs out with '..'"
    if not (dest / name).resolve().is_relative_to(dest):
        return f"resolves outside {dest}"
    return None


def safe_extract_zip(zip_path, dest) -> list[Path]:
    """Extract ``zip_path`` into ``dest`` and return the extracted files. Every member is checked
    first; a symlink, an absolute path or a path resolving outside ``dest`` raises DassError and
    nothing is extracted."""
    dest = Path(dest)
    resolved = dest.resolve()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = zf.infolist()
            for info in members:
                reason = _unsafe_reason(info, resolved)
                if reason:
                    raise DassError(f"{zip_path}: member {info.filename!r} {reason}; "
                                    f"refusing to extract anything")
            dest.mkdir(parents=True, exist_ok=True)
            zf.extractall(dest)
    except zipfile.BadZipFile as e:
        raise DassError(f"{zip_path}: not a readable zip archive ({e})") from None
    return [dest / info.filename for info in members if not info.is_dir()]


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
    ``options``: keyword options of :func:`download_file` (retries, backoff, timeout, force)."""
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
    return {"retries": args.retries, "backoff": args.backoff, "timeout": args.timeout,
            "force": args.force}


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
