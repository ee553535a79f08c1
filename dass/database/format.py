"""The on-disk format of one task of the meta-training database (``<db_root>/<task_key>.pt``).

A plain dict (loadable with ``torch.load(weights_only=True)``)::

    format:   "dass-db-v2"  (v1 files, without the per-seed keys, still load)
    task:     {key, dataset, split ("meta_train" | "meta_valid" | "meta_test"), num_classes,
               teacher_ckpt, data_root}
    space:    the SpaceConfig as a dict (``dass.config.to_dict``)
    noise_seed: int            # seed of the shared noise input of the functional maps
    remap:    str              # remap strategy used for the students' maps and KD init
    recipe:   dict             # the KD recipe that produced the labels
    label_seeds: list of S ints  # KD seeds of every student (v2); the labels are their mean
    teacher:  {arch: {depths, widths}, best_acc, final_acc (percent), macs, params,
               onehot: float32 [D], fmap: float16 [C, r, r],
               proxy_digest: str (optional)}   # see below
    students: {arch: list of {depths, widths} (N),
               onehot: float32 [N, D], fmap: float16 [N, C, r, r],
               best_acc, final_acc, final_loss: float32 [N] (accuracies in percent; the mean
               over the label seeds), best_acc_seeds, final_acc_seeds: float32 [N, S] (v2),
               macs, params: int64 [N], wall_s: float32 [N], seed: int64 [N]}
    dataset_feats: float16 [M, C]   # teacher's pooled last-stage features of M sampled train images

Accuracies are top-1 on the task's test split, in percent, as in the original release.

``teacher.proxy_digest`` (optional; written by the merge since it exists, added to older files by
``python -m dass.database --record-digests DIR``, :func:`dass.database.merge.record_teacher_digests`):
:func:`dass.hashing.proxy_state_sha256` of the teacher's state dict as
:func:`dass.teacher.checkpoint.load_teacher` gives it (float32, also for a half-precision file), the
teacher's part of a proxy cache key (:mod:`dass.proxies.cache`). With it, meta-training reads the
proxy inputs of a task from a cache without the teacher checkpoint. Files without it load as before.
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import torch

from ..config import from_dict
from ..correlation import spearman
from ..errors import DassError
from ..hashing import file_hash
from ..io import atomic_torch_save, atomic_write_json, read_json, safe_torch_load
from ..space import Arch, SpaceConfig, validate
from .splits import META_SPLITS, check_meta_split

log = logging.getLogger("dass.database")

FORMAT = "dass-db-v2"
FORMAT_V1 = "dass-db-v1"
FORMATS = (FORMAT_V1, FORMAT)
SEED_TENSORS = ("best_acc_seeds", "final_acc_seeds")
STUDENT_TENSORS = ("onehot", "fmap", "best_acc", "final_acc", "final_loss", "macs", "params", "wall_s", "seed")


def validate_task_db(d: dict, where: str = "<database>") -> dict:
    """Check keys, counts, shapes and ranges; raise DassError naming the first problem."""
    if not isinstance(d, dict) or d.get("format") not in FORMATS:
        raise DassError(f"{where}: not a {' or '.join(FORMATS)} task file")
    for k in ("task", "space", "noise_seed", "teacher", "students"):
        if k not in d:
            raise DassError(f"{where}: missing key '{k}'")
    for k in ("task", "teacher", "students"):
        if not isinstance(d[k], dict):
            raise DassError(f"{where}: '{k}' must be a mapping, got {type(d[k]).__name__}")
    task = d["task"]
    check_meta_split(task.get("split"), f"{where}: task")
    st = d["students"]
    n = len(st.get("arch", []))
    if n == 0:
        raise DassError(f"{where}: no students")
    for k in STUDENT_TENSORS:
        if k not in st:
            raise DassError(f"{where}: students lack '{k}'")
        if not torch.is_tensor(st[k]) or st[k].shape[0] != n:
            raise DassError(f"{where}: students.{k} must be a tensor with {n} rows")
    t = d["teacher"]
    for k in ("arch", "best_acc", "onehot", "fmap"):
        if k not in t:
            raise DassError(f"{where}: teacher lacks '{k}'")
    for k in ("onehot", "fmap"):
        if not torch.is_tensor(t[k]):
            raise DassError(f"{where}: teacher.{k} must be a tensor")
    digest = t.get("proxy_digest")
    if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise DassError(f"{where}: teacher.proxy_digest must be a sha256 of 64 lowercase hex digits, got {digest!r:.40}")
    acc = t["best_acc"]
    if not isinstance(acc, (int, float)) and not (torch.is_tensor(acc) and acc.numel() == 1):
        raise DassError(f"{where}: teacher.best_acc must be a number, got {t['best_acc']!r:.40}")
    if st["onehot"].shape[1:] != t["onehot"].shape:
        raise DassError(f"{where}: student and teacher one-hot sizes differ")
    if st["fmap"].shape[1:] != t["fmap"].shape:
        raise DassError(f"{where}: student and teacher functional-map shapes differ")
    for k in ("best_acc", "final_acc"):
        v = st[k]
        if not torch.isfinite(v).all() or (v < 0).any() or (v > 100).any():
            raise DassError(f"{where}: students.{k} outside [0, 100]")
    if not 0 <= float(t["best_acc"]) <= 100:
        raise DassError(f"{where}: teacher.best_acc outside [0, 100]")
    for name, v in (("students.fmap", st["fmap"]), ("students.onehot", st["onehot"]), ("teacher.fmap", t["fmap"]),
                    ("teacher.onehot", t["onehot"]), ("students.final_loss", st["final_loss"])):
        if not torch.isfinite(v.float()).all():
            raise DassError(f"{where}: {name} has non-finite values")
    for k in ("macs", "params"):
        if (st[k] <= 0).any() or (k in t and not float(t[k]) > 0):
            raise DassError(f"{where}: students.{k} and teacher.{k} must be positive counts")
    try:
        keys = {_arch_key(a) for a in st["arch"]}
    except (TypeError, KeyError, IndexError):
        raise DassError(f"{where}: students.arch must be a list of {{depths, widths}} mappings") from None
    if len(keys) != n:
        raise DassError(f"{where}: duplicate student architectures")
    _validate_archs(d, where)
    if d["format"] != FORMAT_V1:
        _validate_seeds(d, n, where)
    return d


def _validate_archs(d: dict, where: str) -> None:
    """Every architecture (students and teacher) is one of the file's own space."""
    if not isinstance(d["space"], dict):
        raise DassError(f"{where}: 'space' must be a mapping")
    space = from_dict(SpaceConfig, d["space"], where=f"{where}: space")
    for i, a in enumerate([*d["students"]["arch"], d["teacher"]["arch"]]):
        try:
            validate(Arch.from_dict(a), space)
        except DassError as e:
            who = f"students.arch[{i}]" if i < len(d["students"]["arch"]) else "teacher.arch"
            raise DassError(f"{where}: {who} is not of the space '{space.name}': {e}") from None
        except (TypeError, KeyError, ValueError):
            raise DassError(f"{where}: students.arch must be a list of {{depths, widths}} mappings") from None


def _validate_seeds(d: dict, n: int, where: str) -> None:
    seeds = d.get("label_seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise DassError(f"{where}: label_seeds must be a non-empty list of integers")
    st = d["students"]
    for k in SEED_TENSORS:
        v = st.get(k)
        if not torch.is_tensor(v) or tuple(v.shape) != (n, len(seeds)):
            raise DassError(f"{where}: students.{k} must be a tensor of shape [{n}, {len(seeds)}]")
        if not torch.isfinite(v).all() or (v < 0).any() or (v > 100).any():
            raise DassError(f"{where}: students.{k} outside [0, 100]")
        label = k[:-len("_seeds")]
        if not torch.allclose(v.float().mean(1), st[label].float(), atol=1e-3):
            raise DassError(f"{where}: students.{label} is not the mean of students.{k} over the label seeds")


def label_seeds_of(d: dict) -> list[int]:
    """The KD seeds behind a task's labels (v1 files: the distinct values of ``students.seed``)."""
    if "label_seeds" in d:
        return list(d["label_seeds"])
    return sorted({int(s) for s in d["students"]["seed"].tolist()})


def acc_seeds(d: dict, key: str = "best_acc") -> torch.Tensor:
    """``[N, S]`` per-seed accuracies (v1 files: the label itself as one seed)."""
    st = d["students"]
    return st[f"{key}_seeds"] if f"{key}_seeds" in st else st[key][:, None]


def spearman_brown(r: float, k: int) -> float:
    """Reliability of the mean of ``k`` measurements whose pairwise correlation is ``r`` (NaN where
    ``r <= -1/(k-1)``: the formula has no meaning there; within rounding error of it too, where a
    correlation of -1 computed as -0.9999999999999999 would give -1.8e16)."""
    den = 1 + (k - 1) * r
    return k * r / den if den > 1e-9 else float("nan")


def seed_agreement(acc: torch.Tensor) -> tuple[float | None, float | None]:
    """``acc [N, S]`` -> (mean over seed pairs of the Spearman correlation between two seeds'
    accuracies, Spearman-Brown reliability of the mean over the S seeds); (None, None) for one seed,
    reliability None where the seeds' mean correlation is -1/(S-1) (two seeds in opposite order)."""
    a = torch.as_tensor(acc).double().numpy()
    k = a.shape[1]
    if k < 2:
        return None, None
    with warnings.catch_warnings():      # a constant column is handled below (None), not warned about
        warnings.simplefilter("ignore", UserWarning)
        rs = [spearman(a[:, i], a[:, j]) for i in range(k) for j in range(i + 1, k)]
    r = sum(rs) / len(rs)
    if r != r:   # a constant column: no ranking to agree on
        return None, None
    rel = spearman_brown(r, k)
    return round(r, 4), (None if rel != rel else round(rel, 4))


def _arch_key(a: dict) -> str:
    return repr((tuple(a["depths"]), tuple(tuple(w) for w in a["widths"])))


def load_task_db(path) -> dict:
    d = safe_torch_load(path)
    return validate_task_db(d, str(path))


def save_task_db(d: dict, path) -> None:
    validate_task_db(d, str(path))
    atomic_torch_save(d, path)


def read_manifest(root) -> dict | None:
    """``<root>/manifest.json`` checked for the structure readers rely on (a mapping whose ``tasks``
    is a list of rows, each with a ``key`` and, for a merged task, a ``file``); None when absent."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        return None
    m = read_json(path)
    if not isinstance(m, dict) or not isinstance(m.get("tasks", []), list):
        raise DassError(f"{path}: expected a mapping with a list 'tasks'")
    for i, row in enumerate(m.get("tasks", [])):
        if not isinstance(row, dict) or not isinstance(row.get("key"), str):
            raise DassError(f"{path}: tasks[{i}] must be a mapping with a string 'key'")
        if row.get("file") is not None and not isinstance(row["file"], str):
            raise DassError(f"{path}: tasks[{i}].file must be a file name")
    return m


def unlisted_task_files(root) -> list[str]:
    """The ``*.pt`` files of the database ``root`` its manifest does not list (none without a
    manifest): left over from another task list, they are not part of the database."""
    manifest = read_manifest(root)
    if manifest is None:
        return []
    listed = {row["file"] for row in manifest.get("tasks", []) if row.get("file")}
    return [p.name for p in sorted(Path(root).glob("*.pt")) if p.name not in listed]


MAX_UNION_DEPTH = 4


def union_members(root) -> list[Path] | None:
    """The member databases of a union database (``manifest.json`` with ``union: [folder, ...]``,
    paths relative to ``root``), or None when ``root`` is a plain database. A union holds no task
    files of its own: it joins databases built apart (e.g. the strong- and the weak-teacher tasks)
    so that every reader of a database folder reads them as one."""
    manifest = read_manifest(root)
    if manifest is None or "union" not in manifest:
        return None
    members = manifest["union"]
    where = Path(root) / "manifest.json"
    if not isinstance(members, list) or not members or not all(isinstance(m, str) and m for m in members):
        raise DassError(f"{where}: 'union' must be a non-empty list of database folders")
    if manifest.get("tasks") or list(Path(root).glob("*.pt")):
        raise DassError(f"{where}: a union database lists member folders only, no tasks or task files of its own")
    return [(Path(root) / m) for m in members]


def write_union(out, members) -> dict:
    """Make ``out`` a union database of the database folders ``members`` (its ``manifest.json``, the
    paths relative to ``out``), after checking that they read as one database (:func:`load_db`: one
    space, no key twice). Refuses a folder that holds task files or a plain database's manifest.
    Returns the manifest."""
    out = Path(out)
    if not members:
        raise DassError("--union needs at least one member database")
    if out.exists() and (list(out.glob("*.pt")) or (read_manifest(out) is not None and union_members(out) is None)):
        raise DassError(f"{out}: holds a database of its own; a union goes into an empty folder")
    group_tasks([f for m in members for f in db_task_files(m)], META_SPLITS, out)   # reads as one database
    manifest = {"union": [os.path.relpath(Path(m).resolve(), out.resolve()) for m in members], "tasks": []}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def db_task_files(root, _depth: int = 0) -> list[tuple[Path, dict | None]]:
    """The task files of the database ``root`` (following a union's members, in order), each with
    its manifest row (None without a manifest); checks of :func:`load_db`."""
    root = Path(root)
    if not root.is_dir():
        raise DassError(f"database folder not found: {root}")
    members = union_members(root)
    if members is not None:
        if _depth >= MAX_UNION_DEPTH:
            raise DassError(f"{root}: unions nested deeper than {MAX_UNION_DEPTH} (a cycle?)")
        return [f for m in members for f in db_task_files(m, _depth + 1)]
    manifest = read_manifest(root)
    files = sorted(root.glob("*.pt"))
    if manifest is None:
        return [(p, None) for p in files]
    rows = {row["file"]: row for row in manifest.get("tasks", []) if row.get("file")}
    for name, row in rows.items():
        if not (root / name).is_file():
            raise DassError(f"{root / 'manifest.json'}: lists task {row['key']} in {name}, which is missing")
    extra = [p.name for p in files if p.name not in rows]
    if extra:
        log.warning("%s: %d task file(s) not in manifest.json ignored (%s%s)", root, len(extra),
                    ", ".join(extra[:3]), " ..." if len(extra) > 3 else "")
    return [(p, rows[p.name]) for p in files if p.name in rows]


def db_file_hashes(root) -> dict[str, str]:
    """What a run records of the database it read: ``{file name: content hash}`` of every ``*.pt``
    of a plain database, ``{member folder/file name: hash}`` of a union's members."""
    members = union_members(root)
    if members is None:
        return {p.name: file_hash(p) for p in sorted(Path(root).glob("*.pt"))}
    return {f"{m.name}/{k}": v for m in members for k, v in db_file_hashes(m).items()}


def load_db(root, splits=META_SPLITS) -> dict[str, list[dict]]:
    """The task files of the database ``root`` grouped by split: ``{split: [task dict, ...]}`` in file
    name order (a union's members one after another). With a ``manifest.json``, the database is what
    it lists: a listed file that is missing, or whose split differs from its row's, is an error (never
    a silent average over the rest), and a ``*.pt`` file it does not list (left over from another task list) is ignored with a warning. A
    union database (:func:`union_members`) is the tasks of its members. Every file must be of one
    space, and no task key may occur twice."""
    for s in splits:
        check_meta_split(s, f"splits asked of the database {root}")
    return group_tasks(db_task_files(root), splits, root)


def group_tasks(files: list[tuple[Path, dict | None]], splits, root) -> dict[str, list[dict]]:
    """The task files ``files`` (:func:`db_task_files`) loaded and grouped by split, with the checks of
    :func:`load_db`; ``root`` names the database in the error of an empty one."""
    out: dict[str, list[dict]] = {s: [] for s in splits}
    keys: dict[str, Path] = {}
    space = None
    for p, row in files:
        d = load_task_db(p)
        key, s = d["task"].get("key"), d["task"]["split"]
        if row is not None and (row.get("key") != key or row.get("split", s) != s):
            raise DassError(f"{p}: holds task {key!r} of split {s}, manifest.json says {row.get('key')!r} of "
                            f"split {row.get('split')}")
        if key in keys:
            other = keys[key].name if keys[key].parent == p.parent else keys[key]   # a union's other member: the path
            raise DassError(f"{p}: task key {key!r} also in {other}")
        keys[key] = p
        if space is None:
            space = (d["space"], p)
        elif d["space"] != space[0]:
            raise DassError(f"{p}: of space '{d['space'].get('name')}', {space[1].name} of another space "
                            f"'{space[0].get('name')}': one database holds one space")
        if s in out:
            out[s].append(d)
    if not any(out.values()):
        raise DassError(f"{root}: no task files (*.pt) for splits {list(splits)}")
    return out
