"""Fetching one file of the original release, and unpacking a zip safely.

Transfer
    Streamed in 1 MiB chunks into ``<target>.part``. A later attempt asks for the missing bytes
    with an HTTP Range request: a 206 answer is appended, a 200 answer restarts from byte zero.
    Connection errors, timeouts, HTTP 408/429 and 5xx are retried with exponential backoff
    (``backoff * 2**(n-1)`` seconds before the n-th retry; the count resets whenever an attempt
    brought new bytes). Other HTTP errors are permanent. The ``.part`` file becomes the target
    (``os.replace``) only after validation; a file that fails validation is removed.

Manifest
    ``<root>/.dass_manifest.json`` records the sha256 of every file fetched under ``root``; a file
    already there is checked against it instead of being fetched again.
"""
from __future__ import annotations

import logging
import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3
from tqdm import tqdm

from ..errors import DassError
from ..hashing import file_sha256
from ..io import atomic_write_json, read_json
from .file_checks import unsafe_zip_member, validate_file

log = logging.getLogger("dass.data.download")

MANIFEST_NAME = ".dass_manifest.json"
CHUNK_BYTES = 1 << 20
RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class Retry:
    """How hard a transfer tries: ``retries`` after the first attempt (the count resets whenever an
    attempt brought new bytes), ``backoff`` seconds before the first retry (doubled each time),
    ``timeout`` seconds per request (connect and between bytes)."""

    retries: int = 4
    backoff: float = 1.0
    timeout: float = 60.0


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


def _transfer(url: str, part: Path, retry: Retry, label: str) -> None:
    """Fetch ``url`` into ``part``, resuming and retrying (policy in the module docstring)."""
    retries, backoff = retry.retries, retry.backoff
    failures = 0
    while True:
        before = _part_size(part)
        try:
            _fetch_once(url, part, retry.timeout, label)
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


def download_file(url: str, target, *, retry: Retry = Retry(), expected: str | None = None,
                  validate: bool = True, manifest: Manifest | None = None, num_classes: int | None = None,
                  force: bool = False) -> Path:
    """Download ``url`` to ``target`` and return ``target``.

    An existing ``target`` is not fetched again: it is checked against ``manifest`` (or
    validated and recorded there when it has no entry). ``force`` re-downloads it.
    ``expected``: sha256 hex the file must have. ``retry``: retries, backoff and the timeout per
    request (:class:`Retry`). ``num_classes``: label range for ``*_labels.npy``. Permanent HTTP errors,
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
    _transfer(url, part, retry, target.name)
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
                reason = unsafe_zip_member(info, resolved)
                if reason:
                    raise DassError(f"{zip_path}: member {info.filename!r} {reason}; "
                                    f"refusing to extract anything")
            dest.mkdir(parents=True, exist_ok=True)
            zf.extractall(dest)
    except zipfile.BadZipFile as e:
        raise DassError(f"{zip_path}: not a readable zip archive ({e})") from None
    return [dest / info.filename for info in members if not info.is_dir()]
