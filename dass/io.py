"""Atomic file writes and safe checkpoint loading.

Every file the project writes goes through a temp file in the same folder followed by
``os.replace``, so a kill never leaves a half-written file at the final path; its mode follows the
umask, as a file made by ``open`` would. Every checkpoint is
read with ``torch.load(weights_only=True)``: a pickle that would run code is refused.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

from .errors import DassError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file follows the umask as open() does
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic_write_bytes(path, data)


def atomic_write_text(path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    try:
        import numpy as np  # lazy: numpy only for numpy values; io is on every --help path
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path):
    path = Path(path)
    if not path.is_file():
        raise DassError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DassError(f"{path}: not a UTF-8 JSON text file (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise DassError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def atomic_torch_save(obj, path) -> None:
    import torch  # lazy: keeps --help torch-free (io is on every entry's path)
    buf = io.BytesIO()
    torch.save(obj, buf)
    _atomic_write_bytes(path, buf.getvalue())


def _unpickler_reason(message: str) -> str:
    """The one informative sentence of torch's multi-paragraph weights_only refusal (e.g.
    "Unsupported global: GLOBAL argparse.Namespace was not an allowed global by default")."""
    text = message.split("WeightsUnpickler error:", 1)[-1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "unsupported content")
    return _first_sentence(line)


def safe_torch_load(path, map_location="cpu"):
    """``torch.load(weights_only=True)`` with one-line errors for missing/unsafe/corrupt files.

    Nothing in the file is executed: a pickle that names any class or function outside torch's
    weights-only allowlist is refused, and any other unreadable content (truncated archive, random
    bytes) is reported as such instead of surfacing the unpickler's internal exception."""
    import pickle  # lazy: torch loads it anyway; io is on every --help path (pickle ~1.6 ms)

    import torch  # lazy: keeps --help torch-free (io is on every entry's path)
    path = Path(path)
    if not path.is_file():
        raise DassError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": the file is refused or read anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported" in str(e) or "global" in str(e).lower():
            raise DassError(f"{path}: refused, the file needs more than weights_only=True allows "
                            f"(it could run code): {_unpickler_reason(str(e))}") from None
        msg = str(e).splitlines()[0] if str(e) else "unsupported content"
        raise DassError(f"{path}: not a readable checkpoint ({_first_sentence(msg)})") from None
    except Exception as e:  # the unpickler fails in many ways on random bytes (IndexError, KeyError ...)
        msg = str(e).splitlines()[0] if str(e) else ""
        raise DassError(f"{path}: not a readable checkpoint ({type(e).__name__}: {_first_sentence(msg)})") from None


def _first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of ``text``, shortened at a word boundary (marked '...') past ``limit``."""
    text = text.split(". ", 1)[0].strip().rstrip(".")
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."


def write_csv(path, rows, fields=None) -> None:
    rows = list(rows)
    if fields is None:
        fields = []
        for r in rows:
            for k in r:
                if k not in fields:
                    fields.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(path, buf.getvalue())


@contextlib.contextmanager
def file_lock(path, wait: bool):
    """An exclusive ``flock`` on ``path`` for the block; yields False when another process holds it
    and ``wait`` is False. Where the file system refuses locks, yields True without one."""
    try:
        import fcntl  # lazy: POSIX only; without it the block runs unlocked (except below)
        f = open(path, "a+b")
    except (ImportError, OSError):
        yield True
        return
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        except OSError:
            pass
        yield True
    finally:
        f.close()  # releases the lock
