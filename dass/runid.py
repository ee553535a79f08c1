"""Run identity: a run folder holds the run its inputs determine, and no other.

Every resumable entry (teacher, kd, meta-train, search, evaluation) describes its run by
:func:`identity`: the resolved config (less the keys that do not change the result: where it is
written, progress bars, how far it has got), the content hashes of the files it reads (teacher,
predictor, database task files) and of the dataset's bytes, and the versions of the code that
shape the result. The hash of that description names the run. :func:`claim` refuses a folder that
holds another identity, before anything in it is written, naming what differs; :func:`record`
writes ``identity.json`` into the folder. Default run folders carry the first characters of the
hash, so two different runs never meet.

The content hashes themselves (files, cached; datasets) are :mod:`dass.hashing`'s.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from . import __version__
from .config import to_dict
from .errors import DassError
from .hashing import canonical_json, json_sha256
from .io import atomic_write_json, file_lock

IDENTITY_FILE = "identity.json"
# Bumped when a change of the code changes what a run with the same inputs produces.
IDENTITY_VERSION = 1


def _flatten(d, prefix: str = "") -> dict:
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def identity(kind: str, config, **inputs) -> dict:
    """The identity of a run of ``kind``: ``config`` without the keys outside the identity, plus
    ``inputs`` (content hashes of files and data), plus code versions. ``config`` is a stage's config
    dataclass, whose class names those keys (dotted) in ``IDENTITY_FREE``, next to its fields, and in
    ``IDENTITY_ADDED`` the keys added after runs existed with the value at which they change nothing
    (left out while they hold it, so the earlier runs keep their identity); or a plain dict of what
    identifies the run (nothing dropped)."""
    import torch  # lazy: keeps --help torch-free (runid is imported by dass.cli)

    if isinstance(config, dict):
        values, free, quiet = config, (), {}
    else:
        values, free = to_dict(config), type(config).IDENTITY_FREE
        quiet = getattr(type(config), "IDENTITY_ADDED", {})
    flat = {k: v for k, v in _flatten(values).items() if k not in free and not any(k.startswith(d + ".") for d in free)
            and not (k in quiet and v == quiet[k])}
    parts = {"kind": kind, "code": {"identity": IDENTITY_VERSION, "dass": __version__,
                                    "torch": ".".join(torch.__version__.split(".")[:2])},
             "config": flat, "inputs": inputs}
    return {"hash": json_sha256(parts, compact=False)[:16], **json.loads(canonical_json(parts, compact=False))}


def short(ident: dict) -> str:
    """The part of the hash that default run folder names carry."""
    return ident["hash"][:8]


def _differences(old: dict, new: dict) -> list[str]:
    a, b = _flatten({k: v for k, v in old.items() if k != "hash"}), _flatten({k: v for k, v in new.items() if k != "hash"})
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            name = k.split(".", 1)[1] if k.startswith(("config.", "inputs.")) else k
            va, vb = (str(x.get(k, "<absent>"))[:24] for x in (a, b))
            out.append(f"{name}: {va} -> {vb}")
    return out


LOCK_FILE = ".lock"


def claim(run_dir, ident: dict, exclusive: bool = False) -> None:
    """Refuse ``run_dir`` when it holds another run: an ``identity.json`` other than ``ident``, or an
    entry's ``config.yaml`` without one. Absent, or holding ``ident`` (a resumption), or only other
    files (a caller's own notes; with ``exclusive``, refused too: only an empty folder may be
    claimed): accepted. Writes nothing."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise DassError(f"run folder {run_dir} is a file")
    path = run_dir / IDENTITY_FILE
    if not path.is_file():
        if (run_dir / "config.yaml").is_file():  # an entry's run, of a version before identities
            raise DassError(f"run folder {run_dir} holds a run (config.yaml) but no {IDENTITY_FILE}: another "
                            f"run, or one of an older version; give another run_dir or empty it")
        others = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK_FILE) if run_dir.is_dir() else []
        if exclusive and others:
            raise DassError(f"run folder {run_dir} is not empty and holds no run of this command (it has "
                            f"{', '.join(others[:3])}{' ...' if len(others) > 3 else ''}): nothing was changed; "
                            f"give a new or empty run_dir")
        return
    try:
        old = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise DassError(f"{path}: not valid JSON; give another run_dir or empty it") from None
    if not isinstance(old, dict) or old.get("hash") != ident["hash"]:
        diff = _differences(old if isinstance(old, dict) else {}, ident)
        shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
        raise DassError(f"run folder {run_dir} holds another run (differs in {shown or 'its identity'}): "
                        f"give another run_dir, or delete it to start over")


@contextlib.contextmanager
def locked(run_dir, what: str):
    """Hold ``run_dir/.lock`` (an exclusive ``flock``) for the block; a second process that wants the
    same folder meanwhile gets one DassError naming it. ``run_dir`` must exist."""
    path = Path(run_dir) / LOCK_FILE
    with file_lock(path, wait=False) as ok:
        if not ok:
            raise DassError(f"{run_dir} is in use by another {what} (it holds the lock {path}): wait for it "
                            f"to finish, or give another folder")
        yield


def record(run_dir, ident: dict) -> None:
    atomic_write_json(Path(run_dir) / IDENTITY_FILE, ident)
