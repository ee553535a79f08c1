"""Readers of the original DaSS release's files (structures in docs/PAPER.md, "File structures of
the original release"). Every file is read with ``torch.load(weights_only=True)``; anything else in
it (a pickled object that would run code) is refused. Each reader checks the structure and raises a
one-line DassError naming the file, the key and the entry at fault.

Fields and how they are read (accuracies stay in percent, as in the original):

* ``depth_config``: 4 integers, the depth of each stage.
* ``channel_widths``: one list per stage of the widths of its blocks, in channels. Lists may be
  longer than the stage depth (e.g. padded to 5 entries); the first ``depth_config[s]`` entries are
  read and the rest ignored. The decoded architecture must belong to the given space.
* ``noise_actmap_stage-4``: one ``C x r x r`` map per entry (a leading batch dimension of 1 is
  dropped). ``r`` must be the space's last-stage resolution and ``C`` at most its last-stage width;
  narrower maps are zero-padded in channels to that width (this project's convention, see
  :mod:`dass.space.embed`).
* ``arch_enc``: the original's encoding (181-d, layout never published), kept as it is.
* A "parallel list" column may be a list/tuple, or a tensor whose first dimension indexes entries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DassError
from ..io import safe_torch_load
from ..space import Arch, SpaceConfig, validate
from ..teacher.checkpoint import strip_module_prefix

MAP_KEY = "noise_actmap_stage-4"
NUMBER_KEYS = ("best_acc", "final_acc", "final_loss")
STUDENT_KEYS = ("net_index", *NUMBER_KEYS, "arch_enc", "depth_config", "channel_widths", MAP_KEY)
TEACHER_KEYS = ("best_acc", MAP_KEY)


# ----------------------------------------------------------------------------------------------
# Scalars, columns, maps, architectures


def as_number(x, where: str) -> float:
    """A finite Python float from an int/float or a one-element tensor."""
    if torch.is_tensor(x):
        if x.numel() != 1:
            raise DassError(f"{where}: expected a number, got a tensor of shape {tuple(x.shape)}")
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise DassError(f"{where}: expected a number, got {type(x).__name__}")
    if not math.isfinite(x):
        raise DassError(f"{where}: not a finite number ({x})")
    return float(x)


def as_int(x, where: str) -> int:
    v = as_number(x, where)
    if v != int(v):
        raise DassError(f"{where}: expected an integer, got {v}")
    return int(v)


def as_int_list(x, where: str) -> list[int]:
    if torch.is_tensor(x):
        if x.dim() != 1:
            raise DassError(f"{where}: expected a list of integers, got a tensor of shape {tuple(x.shape)}")
        x = x.tolist()
    if not isinstance(x, (list, tuple)):
        raise DassError(f"{where}: expected a list of integers, got {type(x).__name__}")
    return [as_int(v, f"{where}[{i}]") for i, v in enumerate(x)]


def column(d: dict, key: str, where: str) -> list:
    """Entry list of ``d[key]`` (list, tuple, or tensor indexed on dim 0)."""
    if key not in d:
        raise DassError(f"{where}: missing key '{key}' (has: {', '.join(sorted(map(str, d)))})")
    v = d[key]
    if torch.is_tensor(v):
        if v.dim() == 0:
            raise DassError(f"{where}: '{key}' must hold one entry per network, got a scalar")
        return list(v.unbind(0))
    if not isinstance(v, (list, tuple)):
        raise DassError(f"{where}: '{key}' must be a list (one entry per network), got {type(v).__name__}")
    return list(v)


def columns(d, keys, where: str) -> dict[str, list]:
    """The parallel lists ``keys`` of ``d``, checked to have one common, non-zero length."""
    if not isinstance(d, dict):
        raise DassError(f"{where}: expected a dict of parallel lists, got {type(d).__name__}")
    cols = {k: column(d, k, where) for k in keys}
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) != 1:
        detail = ", ".join(f"{k} {n}" for k, n in lengths.items())
        raise DassError(f"{where}: parallel lists have different lengths ({detail})")
    if not next(iter(lengths.values())):
        raise DassError(f"{where}: the lists are empty")
    return cols


def read_map(x, space: SpaceConfig, where: str) -> torch.Tensor:
    """A ``C x r x r`` float32 map padded to the space's last-stage width (see module doc)."""
    if not torch.is_tensor(x):
        raise DassError(f"{where}: expected a tensor, got {type(x).__name__}")
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    c_max, r = space.stage_widths[-1], space.stage_resolutions()[-1]
    if x.dim() != 3 or tuple(x.shape[1:]) != (r, r) or not 1 <= x.shape[0] <= c_max:
        raise DassError(f"{where}: map has shape {tuple(x.shape)}, expected C x {r} x {r} with C <= {c_max} "
                        f"(space '{space.name}')")
    x = x.detach().float()
    if not torch.isfinite(x).all():
        raise DassError(f"{where}: map has non-finite values")
    if x.shape[0] < c_max:
        x = torch.cat([x, x.new_zeros(c_max - x.shape[0], r, r)])
    return x


def decode_arch(depth_config, channel_widths, space: SpaceConfig, where: str) -> Arch:
    """The architecture of ``depth_config`` / ``channel_widths`` (see module doc); must be in ``space``."""
    depths = as_int_list(depth_config, f"{where} depth_config")
    if len(depths) != space.num_stages:
        raise DassError(f"{where}: depth_config has {len(depths)} stages, space '{space.name}' has {space.num_stages}")
    if torch.is_tensor(channel_widths):
        channel_widths = list(channel_widths.unbind(0)) if channel_widths.dim() else channel_widths
    if not isinstance(channel_widths, (list, tuple)) or len(channel_widths) != space.num_stages:
        raise DassError(f"{where}: channel_widths must be {space.num_stages} lists (one per stage)")
    widths = []
    for s, (d, ws) in enumerate(zip(depths, channel_widths)):
        ws = as_int_list(ws, f"{where} channel_widths[{s}]")
        if len(ws) < d:
            raise DassError(f"{where}: stage {s + 1} has depth {d} but only {len(ws)} widths in channel_widths")
        widths.append(tuple(ws[:d]))
    arch = Arch(tuple(depths), tuple(widths))
    try:
        return validate(arch, space)
    except DassError as e:
        raise DassError(f"{where}: architecture {arch.to_dict()} is not in space '{space.name}': {e}") from None


# ----------------------------------------------------------------------------------------------
# Files


def _load(path, what: str):
    path = Path(path)
    if not path.is_file():
        raise DassError(f"{what} not found: {path}")
    return safe_torch_load(path)


@dataclass
class OriginalTeacher:
    """A teacher checkpoint: state dict (prefix stripped), its recorded best accuracy (percent, None
    when absent) and epoch (None when absent)."""
    state_dict: dict
    best_acc: float | None
    epoch: int | None


def read_teacher_checkpoint(path) -> OriginalTeacher:
    """``checkpoint/teacher/<ds_key>/model_best.pth.tar`` (a dict holding ``state_dict``; other
    entries such as ``epoch``, ``arch``, ``best_acc1``, ``optimizer`` are allowed and ignored, except
    ``best_acc1`` and ``epoch`` which are read)."""
    obj = _load(path, "teacher checkpoint")
    if isinstance(obj, dict) and "state_dict" in obj:
        sd = obj["state_dict"]
    elif isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        sd, obj = obj, {}
    else:
        raise DassError(f"{path}: not a teacher checkpoint (expected a dict with 'state_dict')")
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise DassError(f"{path}: 'state_dict' must map parameter names to tensors")
    best = as_number(obj["best_acc1"], f"{path} best_acc1") if "best_acc1" in obj else None
    epoch = as_int(obj["epoch"], f"{path} epoch") if "epoch" in obj else None
    return OriginalTeacher(strip_module_prefix(sd), best, epoch)


@dataclass
class OriginalRecords:
    """The entries of one database file (students, or the one teacher), decoded.

    ``fmap``: float32 ``N x C x r x r``; accuracies in percent; ``net_index`` None when the file has
    none (teacher files); ``arch_enc`` float32 ``N x D`` or None when absent (teacher files)."""
    archs: list[Arch]
    best_acc: list[float]
    final_acc: list[float]
    final_loss: list[float]
    fmap: torch.Tensor
    net_index: list[int] | None
    arch_enc: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.archs)


def _arch_enc(col: list, where: str) -> torch.Tensor:
    """The original encodings as float32 ``N x D`` (each entry a tensor or a list of numbers)."""
    rows = []
    for i, v in enumerate(col):
        if isinstance(v, (list, tuple)):
            try:
                v = torch.tensor(v, dtype=torch.float32)
            except (TypeError, ValueError):
                v = None
        if not torch.is_tensor(v) or v.numel() == 0:
            raise DassError(f"{where} arch_enc[{i}]: expected a vector of numbers")
        rows.append(v.detach().float().reshape(-1))
    if len({r.numel() for r in rows}) != 1:
        raise DassError(f"{where}: arch_enc entries have different lengths")
    return torch.stack(rows)


def parse_records(d, space: SpaceConfig, where: str, teacher: bool = False) -> OriginalRecords:
    """Decode a dict of parallel lists (students; or, with ``teacher``, the one teacher entry, for
    which only ``best_acc`` and the map are required)."""
    if not isinstance(d, dict):
        raise DassError(f"{where}: expected a dict of parallel lists, got {type(d).__name__}")
    required = TEACHER_KEYS if teacher else STUDENT_KEYS
    present = [k for k in STUDENT_KEYS if k in d or k in required]
    cols = columns(d, present, where)
    n = len(cols[MAP_KEY])
    if teacher and n != 1:
        raise DassError(f"{where}: a teacher file must hold exactly one entry, it holds {n}")
    if "depth_config" in cols or "channel_widths" in cols:
        if not ("depth_config" in cols and "channel_widths" in cols):
            raise DassError(f"{where}: needs both 'depth_config' and 'channel_widths'")
        archs = [decode_arch(dc, cw, space, f"{where} entry {i}")
                 for i, (dc, cw) in enumerate(zip(cols["depth_config"], cols["channel_widths"]))]
    else:
        archs = []
    nums = {k: [as_number(v, f"{where} {k}[{i}]") for i, v in enumerate(cols[k])] for k in NUMBER_KEYS if k in cols}
    best = nums["best_acc"]
    return OriginalRecords(
        archs=archs, best_acc=best, final_acc=nums.get("final_acc", best),
        final_loss=nums.get("final_loss", [float("nan")] * n),
        fmap=torch.stack([read_map(m, space, f"{where} {MAP_KEY}[{i}]") for i, m in enumerate(cols[MAP_KEY])]),
        net_index=[as_int(v, f"{where} net_index[{i}]") for i, v in enumerate(cols["net_index"])]
        if "net_index" in cols else None,
        arch_enc=_arch_enc(cols["arch_enc"], where) if "arch_enc" in cols else None)


def read_database_file(path, space: SpaceConfig, teacher: bool = False) -> OriginalRecords:
    """``preprocessed/ours/<mode>/<ds_key>-logs_noise_actmap.pt`` (or, with ``teacher``, the file of
    the same name under ``teacher/``)."""
    return parse_records(_load(path, "database file"), space, str(path), teacher)


@dataclass
class SearchPool:
    """A search pool: maps float32 ``N x C x r x r``, original encodings ``N x D``, and the net
    index of each entry (None when the file gives none: entry i is then net index i)."""
    fmap: torch.Tensor
    arch_enc: torch.Tensor
    net_index: list[int] | None

    def indices(self) -> list[int]:
        return self.net_index if self.net_index is not None else list(range(len(self.fmap)))


def read_search_pool(path, space: SpaceConfig) -> SearchPool:
    """``preprocessed/search/<ds_key>.pt``: ``{'pred_inp': {'arch_enc': ...}, 'noise_actmap_stage-4':
    ...}``; a ``net_index`` list is read from the top level or from ``pred_inp`` when present."""
    d = _load(path, "search pool")
    where = str(path)
    if not isinstance(d, dict) or not isinstance(d.get("pred_inp"), dict):
        raise DassError(f"{where}: expected a dict with a dict 'pred_inp' and '{MAP_KEY}'")
    inp = d["pred_inp"]
    src = {"arch_enc": column(inp, "arch_enc", f"{where} pred_inp"), MAP_KEY: column(d, MAP_KEY, where)}
    for holder in (d, inp):
        if "net_index" in holder:
            src["net_index"] = column(holder, "net_index", where)
            break
    cols = columns(src, list(src), where)
    return SearchPool(
        fmap=torch.stack([read_map(m, space, f"{where} {MAP_KEY}[{i}]") for i, m in enumerate(cols[MAP_KEY])]),
        arch_enc=_arch_enc(cols["arch_enc"], where),
        net_index=[as_int(v, f"{where} net_index[{i}]") for i, v in enumerate(cols["net_index"])]
        if "net_index" in cols else None)


@dataclass
class NetSample:
    """One entry of a net-sample list: its position ``index`` (the net index of ``net_samples.pt``;
    for ``net_samples_50_for_correlation.pt`` the index the original's ``kd_selected_student`` takes),
    the original's flops and params (its own units), the architecture, and ``key``: the entry's
    element ``[0]`` in the correlation list when it is an integer (else None)."""
    index: int
    flops: float
    params: float
    arch: Arch
    key: int | None = None


def _sample_info(info, space: SpaceConfig, where: str) -> tuple[float, float, Arch]:
    if not isinstance(info, (list, tuple)) or len(info) < 4:
        raise DassError(f"{where}: expected [flops, params, depth_config, channel_widths, ...]")
    return (as_number(info[0], f"{where} flops"), as_number(info[1], f"{where} params"),
            decode_arch(info[2], info[3], space, where))


def read_net_samples(path, space: SpaceConfig) -> list[NetSample]:
    """``net_info/net_samples.pt``: a list indexed by net index of ``[flops, params, depth_config,
    channel_widths, ...]``."""
    items = _load(path, "net-sample list")
    if not isinstance(items, (list, tuple)) or not items:
        raise DassError(f"{path}: expected a non-empty list indexed by net index")
    return [NetSample(i, *_sample_info(x, space, f"{path} entry {i}")) for i, x in enumerate(items)]


def read_correlation_samples(path, space: SpaceConfig) -> list[NetSample]:
    """``net_info/net_samples_50_for_correlation.pt``: a list whose every element ``e`` has
    ``e[1] = [flops, params, depth_config, channel_widths]`` (the original reads entry ``[i][1]`` for
    ``--net_index i``)."""
    items = _load(path, "net-sample list")
    if not isinstance(items, (list, tuple)) or not items:
        raise DassError(f"{path}: expected a non-empty list")
    out = []
    for i, e in enumerate(items):
        where = f"{path} entry {i}"
        if not isinstance(e, (list, tuple)) or len(e) < 2:
            raise DassError(f"{where}: expected an element whose [1] is [flops, params, depth_config, channel_widths]")
        first = e[0]
        is_int = (isinstance(first, int) and not isinstance(first, bool)) or (
            torch.is_tensor(first) and first.numel() == 1 and not first.is_floating_point())
        out.append(NetSample(i, *_sample_info(e[1], space, where), key=as_int(first, where) if is_int else None))
    return out
