"""Every content hash of the package, in one place.

- :func:`file_sha256`: a file's bytes; :func:`file_hash`: the same, cached by (absolute path, size,
  modification time) in ``$DASS_CACHE_DIR/file_hashes.json`` (default ``~/.cache/dass``), so a
  large dataset is read once (an unwritable cache only costs the re-reading).
- :func:`canonical_json`, :func:`json_sha256`, :func:`json_sha1`: a JSON value (keys sorted).
- :func:`tensor_dict_sha256`: a state dict (teacher checkpoints' ``float32_state_sha256``, the
  teacher-logit caches); :func:`proxy_state_sha256` and :func:`proxy_key_sha256`: the proxy score
  caches' keys (committed under ``assets/cpu/proxy_cache``).
- :func:`arrays_sha256`: a dataset's images and labels in memory (the database's student ids, the
  teacher-logit caches); :func:`dataset_hash`: the run identity of a dataset (the files its reader
  read).

Each function keeps the exact bytes it hashed before it moved here: their values key caches and
shipped assets (database student ids, teacher checkpoints, proxy caches, glyph datasets'
``meta.json``), so none may change. torch and numpy are imported only by the functions that need
them (this module is on every entry's ``--help`` path through :mod:`dass.runid`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import DassError
from .io import atomic_write_json

_CACHE_MAX = 20000
_cache: dict | None = None
_cache_file: Path | None = None


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read ``chunk`` bytes at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def named_blobs_sha256(blobs: dict) -> str:
    """Hex sha256 over ``{name: bytes}``: one line ``name NUL sha256(bytes)`` per name, sorted (the
    identity of the files a folder is written from)."""
    h = hashlib.sha256()
    for name in sorted(blobs):
        h.update(f"{name}\0{bytes_sha256(blobs[name])}\n".encode())
    return h.hexdigest()


def canonical_json(obj, compact: bool = True) -> str:
    """``obj`` as JSON with sorted keys (values JSON cannot hold written as ``str``); ``compact``:
    no spaces after ``,`` and ``:``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":") if compact else None, default=str)


def json_sha256(obj, compact: bool = True) -> str:
    """Hex sha256 of :func:`canonical_json` of ``obj``."""
    return hashlib.sha256(canonical_json(obj, compact).encode()).hexdigest()


def json_sha1(obj, compact: bool = True) -> str:
    """Hex sha1 of :func:`canonical_json` of ``obj`` (architecture keys)."""
    return hashlib.sha1(canonical_json(obj, compact).encode()).hexdigest()


def tensor_dict_sha256(sd: dict) -> str:
    """sha256 over a state dict's keys, dtypes, shapes and bytes (keys in sorted order; a value that
    is not a tensor by its ``repr``)."""
    import torch  # lazy: keeps --help torch-free
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k]
        h.update(k.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def _feed_tensor(h, t) -> None:
    import torch  # lazy: keeps --help torch-free
    t = t.detach().to("cpu").contiguous()
    h.update(f"{t.dtype}|{list(t.shape)}|".encode())
    h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())


def proxy_state_sha256(state: dict) -> str:
    """sha256 of a state dict's names, shapes, dtypes and values, as the proxy score caches key a
    teacher (names ``\\0``-terminated; bfloat16 values as float32)."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode() + b"\0")
        _feed_tensor(h, state[k])
    return h.hexdigest()


def proxy_key_sha256(head: dict, *tensors) -> str:
    """sha256 of :func:`canonical_json` (spaced) of ``head`` followed by ``tensors`` as
    :func:`proxy_state_sha256` feeds them: a proxy score cache entry's key."""
    h = hashlib.sha256()
    h.update(canonical_json(head, compact=False).encode())
    for t in tensors:
        _feed_tensor(h, t)
    return h.hexdigest()


def arrays_sha256(arrays) -> str:
    """sha256 of a dataset's images and labels as held in memory (``ImageArrays``)."""
    import numpy as np  # lazy: keeps --help light
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(arrays.images).tobytes())
    h.update(np.ascontiguousarray(arrays.labels).tobytes())
    return h.hexdigest()


def _cache_path() -> Path:
    root = os.environ.get("DASS_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dass"
    return Path(root) / "file_hashes.json"


def _load_cache() -> dict:
    global _cache, _cache_file
    if _cache is None or _cache_file != _cache_path():
        _cache_file = _cache_path()
        try:
            d = json.loads(_cache_file.read_text())
            _cache = d if isinstance(d, dict) else {}
        except (OSError, ValueError):
            _cache = {}
    return _cache


def _save_cache() -> None:
    cache = _load_cache()
    while len(cache) > _CACHE_MAX:
        cache.pop(next(iter(cache)))
    try:
        atomic_write_json(_cache_path(), cache, indent=0)
    except OSError:
        pass  # a cache that cannot be written only means hashing again next time


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def file_hash(path, _save: bool = True) -> str:
    """sha256 of a file's bytes (cached by path, size and modification time)."""
    path = Path(path)
    if not path.is_file():
        raise DassError(f"file not found: {path}")
    cache = _load_cache()
    key = _stamp(path)
    if key not in cache:
        cache[key] = file_sha256(path)
        if _save:
            _save_cache()
    return cache[key]


def folder_hash(folder) -> str:
    """Hash of every file under ``folder`` (relative names and contents; hidden files skipped)."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    for p in files:
        h.update(f"{p.relative_to(folder).as_posix()}\0{file_hash(p, _save=False)}\n".encode())
    _save_cache()
    return h.hexdigest()


def dataset_hash(arrays) -> str:
    """Content hash of a loaded dataset split: exactly the files its reader read (``arrays.files``,
    through the cache; dot-files and files behind symbolic links included when the reader read them,
    nothing else of the folder), plus which images it takes and their labels; without such a list,
    every file of the folder of ``arrays.source``, or the bytes in memory when it came from nowhere
    on disk. The one data identity of the pipeline, the stages and the database build."""
    src = Path(arrays.source) if arrays.source else None
    h = hashlib.sha256()
    h.update(json.dumps([arrays.name, len(arrays), int(arrays.num_classes), list(arrays.images.shape)]).encode())
    h.update(arrays.labels.tobytes())
    files = getattr(arrays, "files", None)
    if files:
        base = None if src is None else src if src.is_dir() else src.parent   # names relative to the data
        for f in files:
            f = Path(f)
            name = f.relative_to(base).as_posix() if base is not None and f.is_relative_to(base) else str(f)
            h.update(f"{name}\0{file_hash(f, _save=False)}\n".encode())
        _save_cache()
    elif src is not None and src.exists():
        h.update(folder_hash(src if src.is_dir() else src.parent).encode())
    else:
        h.update(arrays.images.tobytes())
    return h.hexdigest()
