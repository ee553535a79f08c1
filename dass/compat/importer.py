"""Convert the original DaSS release into this project's files.

``import_release(src, out, space)`` reads, under ``src`` (the ``--root`` given to the original's
download scripts):

* ``preprocessed/ours/<mode>/<ds_key>-logs_noise_actmap.pt`` and its teacher file
  ``preprocessed/ours/<mode>/teacher/<ds_key>-logs_noise_actmap.pt`` -> one task file
  ``<out>/<ds_key>.pt`` (``dass-db-v1``, split = mode), see :func:`task_from_records`;
* ``checkpoint/teacher/<ds_key>/model_best.pth.tar`` (optional) -> ``<out>/teachers/<ds_key>/teacher.pt``
  (this project's teacher format, see :func:`convert_teacher`);
* ``preprocessed/search/<ds_key>.pt`` (optional, needs ``net_samples.pt``) -> a candidates file
  ``<out>/search/<ds_key>.pt`` (see :func:`candidates_from_pool`);
* ``preprocessed/net_info/net_samples.pt`` and ``net_samples_50_for_correlation.pt`` (optional) ->
  ``<out>/net_info/<name>.json``: a list of ``{"net_index" (the position), "arch": {depths, widths},
  "orig_flops", "orig_params"[, "orig_key"]}`` (``orig_key``: a correlation entry's integer element
  ``[0]``); readable by ``python -m dass.kd candidates_file=<json> index=<net_index>``;

and writes ``<out>/manifest.json``. Task files sit at the top of ``out`` (what ``load_db`` reads);
everything else goes into sub-folders so it is never mistaken for a task.

Imported task files differ from built ones only where the original gives nothing to fill in:
``noise_seed`` is ``-1`` ("the original's noise", which cannot be regenerated), ``wall_s`` is 0 and
``seed`` -1 for every student, ``dataset_feats`` is absent (the predictor's optional D input is then
unavailable: the paper's STA predictor does not use it), ``task.data_root`` is empty. The original's
extra fields are kept beside the student rows: ``students.orig_net_index`` (int64 ``N``) and
``students.orig_arch_enc`` (float32 ``N x 181``); the teacher's ``orig_arch_enc`` likewise when its
file has one. Students whose architecture repeats an earlier one of the same file are dropped (the
format requires distinct students); the manifest counts them.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..config import to_dict
from ..data import tiny_imagenet
from ..data.download import NUM_CLASSES
from ..database.format import FORMAT_V1 as FORMAT, save_task_db, validate_task_db
from ..database.splits import META_SPLITS, check_meta_split
from ..errors import DassError
from ..io import atomic_torch_save, atomic_write_json
from ..space import Arch, SpaceConfig, macs, onehot, onehot_batch, params, teacher_arch
from ..teacher.checkpoint import check_teacher_state_dict, save_teacher
from ..train.recipe import KDRecipe
from .original import (NetSample, OriginalRecords, SearchPool, read_correlation_samples, read_database_file,
                       read_net_samples, read_search_pool, read_teacher_checkpoint)

log = logging.getLogger("dass.compat")

ORIGINAL_NOISE_SEED = -1          # the original's fixed noise: not reproducible by seed
ORIGINAL_REMAP = "copy_paste_first"  # the original's default remapping (docs/PAPER.md)
CANDIDATES_FORMAT = "dass-candidates-v1"
DB_SUFFIX = "-logs_noise_actmap.pt"


def known_num_classes(key: str) -> int | None:
    """Class count of an original task key, or None when the key is not one of the release's."""
    if re.fullmatch(r"tiny_imagenet-\d+", key):
        return tiny_imagenet.CLASSES_PER_SPLIT
    return None if key == tiny_imagenet.NAME else NUM_CLASSES.get(key)   # the class counts' one table


# ----------------------------------------------------------------------------------------------
# Teachers


def convert_teacher(src, out, space: SpaceConfig, dataset: str = "", best_acc: float | None = None,
                    fallback_best_acc: float | None = None) -> dict:
    """Original ``model_best.pth.tar`` -> this project's teacher file at ``out``.

    The recorded ``metrics.best_acc`` (percent) is ``best_acc`` when given, else the checkpoint's
    ``best_acc1``, else ``fallback_best_acc``, else absent. ``dataset`` defaults to the name of the
    checkpoint's folder (the original's ``ds_key``). Returns ``{path, dataset, num_classes, best_acc}``."""
    info, write = _read_teacher(src, out, space, dataset, best_acc, fallback_best_acc)
    write()
    return info


def _read_teacher(src, out, space: SpaceConfig, dataset: str, best_acc, fallback_best_acc):
    """:func:`convert_teacher`'s checks and its result, and the function that then writes the file."""
    src = Path(src)
    orig = read_teacher_checkpoint(src)
    sd, num_classes = check_teacher_state_dict(orig.state_dict, space, str(src))
    acc = next((a for a in (best_acc, orig.best_acc, fallback_best_acc) if a is not None), None)
    if acc is not None and not 0 <= acc <= 100:
        raise DassError(f"{src}: best accuracy {acc} is not a percentage in [0, 100]")
    dataset = dataset or src.parent.name

    def write():
        save_teacher(out, sd, space, num_classes, dataset, {} if acc is None else {"best_acc": float(acc)},
                     recipe=None, seed=None, source={"file": str(src), "epoch": orig.epoch, "release": "original DaSS"})
    return {"path": str(out), "dataset": dataset, "num_classes": num_classes, "best_acc": acc}, write


# ----------------------------------------------------------------------------------------------
# Task files, candidates, net-sample lists


def task_from_records(students: OriginalRecords, teacher: OriginalRecords, key: str, split: str,
                      space: SpaceConfig, num_classes: int, teacher_ckpt: str = "",
                      source: dict | None = None) -> tuple[dict, int]:
    """One ``dass-db-v1`` task dict from an original database file and its teacher file; returns it
    with the number of repeated students dropped (see module doc)."""
    check_meta_split(split, f"task {key}")
    t_arch = teacher_arch(space)
    if teacher.archs and teacher.archs[0] != t_arch:
        raise DassError(f"task {key}: the teacher file's architecture {teacher.archs[0].to_dict()} is not the "
                        f"teacher of space '{space.name}'")
    seen: set[Arch] = set()
    keep = []
    for i, a in enumerate(students.archs):
        if a not in seen:
            seen.add(a)
            keep.append(i)
    archs = [students.archs[i] for i in keep]
    n = len(keep)

    def pick(values, dtype):
        return torch.tensor([values[i] for i in keep], dtype=dtype)

    st = {
        "arch": [a.to_dict() for a in archs],
        "onehot": onehot_batch(archs, space),
        "fmap": students.fmap[keep].half(),
        "best_acc": pick(students.best_acc, torch.float32),
        "final_acc": pick(students.final_acc, torch.float32),
        "final_loss": pick(students.final_loss, torch.float32),
        "macs": torch.tensor([macs(a, space, num_classes) for a in archs], dtype=torch.int64),
        "params": torch.tensor([params(a, space, num_classes) for a in archs], dtype=torch.int64),
        "wall_s": torch.zeros(n, dtype=torch.float32),
        "seed": torch.full((n,), -1, dtype=torch.int64),
        "orig_net_index": pick(students.net_index, torch.int64),
        "orig_arch_enc": students.arch_enc[keep].float(),
    }
    te = {"arch": t_arch.to_dict(), "best_acc": teacher.best_acc[0], "final_acc": teacher.final_acc[0],
          "macs": macs(t_arch, space, num_classes), "params": params(t_arch, space, num_classes),
          "onehot": onehot(t_arch, space), "fmap": teacher.fmap[0].half()}
    if teacher.arch_enc is not None:
        te["orig_arch_enc"] = teacher.arch_enc[0].float()
    d = {"format": FORMAT,
         "task": {"key": key, "dataset": key, "split": split, "num_classes": num_classes,
                  "teacher_ckpt": teacher_ckpt, "data_root": ""},
         "space": to_dict(space), "noise_seed": ORIGINAL_NOISE_SEED, "remap": ORIGINAL_REMAP,
         "recipe": to_dict(KDRecipe()), "source": dict(source or {}, release="original DaSS"),
         "teacher": te, "students": st}
    return d, len(students) - n


def archs_for_pool(pool: SearchPool, samples: list[NetSample], where: str) -> list[Arch]:
    """The architecture of every pool entry through the net-sample list (see :class:`SearchPool`)."""
    out = []
    for i, idx in enumerate(pool.indices()):
        if not 0 <= idx < len(samples):
            raise DassError(f"{where}: entry {i} has net index {idx}, net_samples.pt holds {len(samples)} nets")
        out.append(samples[idx].arch)
    return out


def candidates_from_pool(pool: SearchPool, samples: list[NetSample], space: SpaceConfig, key: str,
                         num_classes: int, where: str = "<search pool>",
                         teacher: OriginalRecords | None = None) -> dict:
    """A candidates file for ``python -m dass.search candidates=<file>``::

        {format, task, space, num_classes, noise_seed (-1), archs: list of {depths, widths} (N),
         net_index: list[int] (N), fmap: float16 [N, C, r, r], orig_arch_enc: float32 [N, D],
         macs, params: int64 [N],
         teacher: {arch, best_acc, fmap: float16 [C, r, r]}}   # when the release has the task's teacher file

    The teacher entry carries the original's teacher map on the same noise as the candidates' maps
    (the T input and the support set; this project cannot regenerate that noise).
    """
    archs = archs_for_pool(pool, samples, where)
    d = {"format": CANDIDATES_FORMAT, "task": key, "space": to_dict(space), "num_classes": num_classes,
         "noise_seed": ORIGINAL_NOISE_SEED, "archs": [a.to_dict() for a in archs],
         "net_index": pool.indices(), "fmap": pool.fmap.half(), "orig_arch_enc": pool.arch_enc,
         "macs": torch.tensor([macs(a, space, num_classes) for a in archs], dtype=torch.int64),
         "params": torch.tensor([params(a, space, num_classes) for a in archs], dtype=torch.int64)}
    if teacher is not None:
        d["teacher"] = {"arch": teacher_arch(space).to_dict(), "best_acc": teacher.best_acc[0],
                        "fmap": teacher.fmap[0].half()}
    return d


def sample_list(samples: list[NetSample]) -> list[dict]:
    """JSON rows of a net-sample list (see module doc)."""
    rows = []
    for s in samples:
        row = {"net_index": s.index, "arch": s.arch.to_dict(), "orig_flops": s.flops, "orig_params": s.params}
        if s.key is not None:
            row["orig_key"] = s.key
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# The whole release


@dataclass
class ReleaseFiles:
    """What was found under ``src``: ``databases`` maps ds_key to ``(mode, students file, teacher file)``."""
    databases: dict[str, tuple[str, Path, Path]] = field(default_factory=dict)
    teachers: dict[str, Path] = field(default_factory=dict)
    pools: dict[str, Path] = field(default_factory=dict)
    net_samples: Path | None = None
    correlation: Path | None = None


def find_release(src) -> ReleaseFiles:
    """Locate the original's files under ``src`` (the download scripts' ``--root``)."""
    src = Path(src)
    if not src.is_dir():
        raise DassError(f"source folder not found: {src}")
    found = ReleaseFiles()
    pre = src / "preprocessed"
    for mode in META_SPLITS:
        for p in sorted((pre / "ours" / mode).glob(f"*{DB_SUFFIX}")):
            key = p.name[: -len(DB_SUFFIX)]
            if key in found.databases:
                raise DassError(f"{src}: task '{key}' appears under both {found.databases[key][0]} and {mode}")
            tp = p.parent / "teacher" / p.name
            if not tp.is_file():
                raise DassError(f"{p}: its teacher file {tp} is missing (it holds the support label)")
            found.databases[key] = (mode, p, tp)
    for p in sorted((src / "checkpoint" / "teacher").glob("*/model_best.pth.tar")):
        found.teachers[p.parent.name] = p
    for p in sorted((pre / "search").glob("*.pt")):
        found.pools[p.stem] = p
    net_info = pre / "net_info"
    found.net_samples = (net_info / "net_samples.pt") if (net_info / "net_samples.pt").is_file() else None
    corr = net_info / "net_samples_50_for_correlation.pt"
    found.correlation = corr if corr.is_file() else None
    if not (found.databases or found.teachers or found.pools or found.net_samples or found.correlation):
        raise DassError(f"{src}: no original files found (expected preprocessed/ours/<mode>/*{DB_SUFFIX}, "
                        "checkpoint/teacher/<ds_key>/model_best.pth.tar, preprocessed/search/*.pt or "
                        "preprocessed/net_info/*.pt)")
    if found.pools and found.net_samples is None:
        raise DassError(f"{src}: search pools need preprocessed/net_info/net_samples.pt to name their architectures")
    return found


def resolve_num_classes(key: str, overrides: dict[str, int], from_teacher: int | None) -> int:
    """``overrides`` first, then the converted teacher's classifier, then the release's known counts."""
    if key in overrides:
        if from_teacher is not None and from_teacher != overrides[key]:
            raise DassError(f"task {key}: --num-classes says {overrides[key]}, its teacher has {from_teacher} classes")
        return overrides[key]
    if from_teacher is not None:
        return from_teacher
    known = known_num_classes(key)
    if known is None:
        raise DassError(f"task {key}: unknown class count; give it with --num-classes {key}=N")
    return known


def _check_out(out: Path, keys) -> None:
    stray = sorted(p.name for p in out.glob("*.pt") if p.stem not in keys)
    if stray:
        raise DassError(f"{out}: already holds other task files ({', '.join(stray[:3])}); import into an empty folder")


def import_release(src, out, space: SpaceConfig, num_classes: dict[str, int] | None = None) -> dict:
    """Convert everything found under ``src`` into ``out`` (layout in the module doc); returns the
    manifest (also written to ``<out>/manifest.json``)."""
    overrides = dict(num_classes or {})
    found = find_release(src)
    out = Path(out)
    _check_out(out, found.databases)
    for key in [*found.databases, *found.pools]:  # every class count known before any work
        if key not in overrides and key not in found.teachers and known_num_classes(key) is None:
            raise DassError(f"task {key}: unknown class count; give it with --num-classes {key}=N")
    # read and check every database before writing anything
    parsed = {}
    for key, (mode, sp, tp) in tqdm(found.databases.items(), desc="database files", unit="file"):
        parsed[key] = (read_database_file(sp, space), read_database_file(tp, space, teacher=True))
    samples = read_net_samples(found.net_samples, space) if found.net_samples else None
    corr = read_correlation_samples(found.correlation, space) if found.correlation else None

    # every output made and checked in memory first: nothing is written unless all of it passes
    writes = []
    teachers, classes = {}, {}
    for key, path in tqdm(found.teachers.items(), desc="teachers", unit="file"):
        db_acc = parsed[key][1].best_acc[0] if key in parsed else None
        info, write = _read_teacher(path, out / "teachers" / key / "teacher.pt", space, key, None, db_acc)
        classes[key] = info["num_classes"]
        teachers[key] = info
        writes.append(write)

    rows, dropped = [], {}
    for key, (mode, sp, tp) in found.databases.items():
        nc = resolve_num_classes(key, overrides, classes.get(key))
        ckpt = teachers[key]["path"] if key in teachers else ""
        d, n_drop = task_from_records(*parsed[key], key, mode, space, nc, ckpt,
                                      source={"students_file": str(sp), "teacher_file": str(tp)})
        validate_task_db(d, str(out / f"{key}.pt"))
        writes.append(lambda d=d, key=key: save_task_db(d, out / f"{key}.pt"))
        if n_drop:
            log.warning("task %s: dropped %d repeated students", key, n_drop)
            dropped[key] = n_drop
        rows.append({"key": key, "dataset": key, "split": mode, "students": len(d["students"]["arch"]),
                     "done": len(d["students"]["arch"]), "file": f"{key}.pt",
                     "teacher_best_acc": float(d["teacher"]["best_acc"])})

    pools = []
    for key, path in tqdm(found.pools.items(), desc="search pools", unit="file"):
        nc = resolve_num_classes(key, overrides, classes.get(key))
        cand = candidates_from_pool(read_search_pool(path, space), samples, space, key, nc, str(path),
                                    teacher=parsed[key][1] if key in parsed else None)
        writes.append(lambda cand=cand, key=key: atomic_torch_save(cand, out / "search" / f"{key}.pt"))
        pools.append({"key": key, "file": f"search/{key}.pt", "candidates": len(cand["archs"]),
                      "teacher": "teacher" in cand})

    net_info = []
    for name, items in (("net_samples", samples), ("net_samples_50_for_correlation", corr)):
        if items is not None:
            writes.append(lambda name=name, items=items: atomic_write_json(out / "net_info" / f"{name}.json",
                                                                           sample_list(items)))
            net_info.append({"file": f"net_info/{name}.json", "nets": len(items)})

    for write in writes:
        write()
    manifest = {"format": FORMAT, "source": "original DaSS release", "src": str(src), "space": to_dict(space),
                "kd": to_dict(KDRecipe()), "remap": ORIGINAL_REMAP, "noise_seed": ORIGINAL_NOISE_SEED,
                "tasks": rows, "complete": True, "dropped_repeated_students": dropped,
                "teachers": [{"key": k, "file": f"teachers/{k}/teacher.pt", "num_classes": v["num_classes"],
                              "best_acc": v["best_acc"]} for k, v in teachers.items()],
                "search_pools": pools, "net_info": net_info}
    atomic_write_json(out / "manifest.json", manifest)
    return manifest
