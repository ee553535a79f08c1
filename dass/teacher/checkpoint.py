"""Teacher checkpoints: the project's ``teacher.pt`` and the original release's ``model_best.pth.tar``.

Project format (written by ``python -m dass.teacher``)::

    {"state_dict": {...}, "space": SpaceConfig as a dict, "arch": {"depths", "widths"},
     "num_classes": int, "dataset": str, "metrics": {best_acc, final_acc, ...},
     "recipe": TeacherRecipe as a dict or None, "seed": int or None, ["data": {"train", "test"}]}

``recipe`` and ``seed`` (what trained it; None when unknown: an imported or a given teacher) are always
written; ``data`` (:func:`dass.hashing.dataset_hash` of both splits) where the writer knows it.

A file may store its floating-point tensors at half precision (``float16``, as the shipped
``assets/cpu/teachers`` do, written by :func:`store_half`); such a file also holds
``"half": {"dtype": "float16", "float32_sha256": <sha256 of the float32 file it was made from>,
"float32_state_sha256": <its state dict's sha256, dass.hashing.tensor_dict_sha256>}``. :func:`load_teacher` gives every
teacher back in the network's float32, whatever the file stores.

Also accepted: a dict with only ``state_dict`` (the original release; it may hold other entries such
as ``epoch``) or a bare state dict; a ``module.`` prefix on the keys (DataParallel) is stripped.
Such files carry no space, so the caller must give one.

The one home of this layout: :func:`teacher_checkpoint` / :func:`save_teacher` write it (teacher
runs, the database build, the pipeline's copy of a given teacher, the importer of the original
release), :func:`load_teacher` reads it,
:func:`check_teacher_state_dict` checks a state dict against a space and :func:`strip_module_prefix`
is the one prefix rule.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import config as cfgmod
from ..errors import DassError
from ..hashing import file_sha256, tensor_dict_sha256
from ..io import atomic_torch_save, safe_torch_load
from ..space import Arch, ResNet, SpaceConfig, build, space_difference, teacher_arch


def strip_module_prefix(sd: dict) -> dict:
    """Drop the ``module.`` prefix that ``DataParallel`` puts on every key. Only when every key has
    it: a state dict with some prefixed keys is not a DataParallel save and is left as it is (the
    state-dict check then names the odd key)."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def teacher_checkpoint(sd: dict, space: SpaceConfig, num_classes: int, dataset: str, metrics: dict, *,
                       recipe, seed: int | None, **extra) -> dict:
    """The project's teacher checkpoint dict (layout above). ``recipe`` (a TeacherRecipe, its dict, or
    None when unknown) and ``seed`` are required, so that no writer forgets them; ``extra`` entries
    are kept as they are (e.g. ``data``, or ``source`` of an imported teacher)."""
    if recipe is not None and not isinstance(recipe, dict):
        recipe = cfgmod.to_dict(recipe)
    return {"state_dict": sd, "space": cfgmod.to_dict(space), "arch": teacher_arch(space).to_dict(),
            "num_classes": int(num_classes), "dataset": dataset, "metrics": metrics, "recipe": recipe,
            "seed": None if seed is None else int(seed), **extra}


def save_teacher(path, sd: dict, space: SpaceConfig, num_classes: int, dataset: str, metrics: dict,
                 **record) -> Path:
    """Write :func:`teacher_checkpoint` atomically to ``path``; returns the path. ``record``: its
    keyword arguments, ``recipe`` and ``seed`` required (a TypeError names the one missing)."""
    atomic_torch_save(teacher_checkpoint(sd, space, num_classes, dataset, metrics, **record), path)
    return Path(path)


def check_teacher_state_dict(sd: dict, space: SpaceConfig, where) -> tuple[dict, int]:
    """Check that ``sd`` (prefix already stripped) is the teacher of ``space``: the same names and
    shapes, except the classifier's rows, which give the class count. Returns ``(state dict in the
    network's dtypes, num_classes)``; missing BN step counters (absent from very old checkpoints) are
    set to 0: they play no role in eval or KD. Raises a one-line DassError naming ``where``."""
    fc = sd.get("fc.weight")
    if not torch.is_tensor(fc) or fc.dim() != 2:
        raise DassError(f"{where}: state dict has no 2-d 'fc.weight': not a ResNet teacher of this project's layout")
    num_classes = int(fc.shape[0])
    with torch.device("meta"):  # shapes only: no weights are initialised
        expected = build(teacher_arch(space), space, num_classes).state_dict()
    sd = dict(sd)
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros((), dtype=v.dtype)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        what = f"lacks '{missing[0]}'" if missing else f"has an unexpected '{unexpected[0]}'"
        raise DassError(f"{where}: state dict {what} for the teacher of space '{space.name}' "
                        f"({len(missing)} missing, {len(unexpected)} unexpected)")
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise DassError(f"{where}: '{k}' has shape {tuple(sd[k].shape)}, the teacher of space "
                            f"'{space.name}' needs {tuple(v.shape)}")
        if v.is_floating_point() and not sd[k].is_floating_point():   # never a silent cast of int64 weights
            raise DassError(f"{where}: '{k}' is of type {sd[k].dtype}, not floating point: not a trained teacher")
        if v.is_floating_point() and not bool(torch.isfinite(sd[k]).all()):
            raise DassError(f"{where}: '{k}' has non-finite values (NaN or infinite): a damaged teacher")
    return {k: sd[k].detach().to(v.dtype).contiguous() for k, v in expected.items()}, num_classes


HALF_DTYPE = torch.float16
HALF_MAX = float(torch.finfo(HALF_DTYPE).max)


def half_checkpoint(obj: dict, float32_sha256: str) -> dict:
    """The teacher checkpoint ``obj`` (project layout) with its floating-point tensors in float16 and
    a ``half`` record of where it came from. Raises a DassError when a finite value exceeds float16's
    range (it would become inf) or when ``obj`` is already half precision."""
    if "half" in obj:
        raise DassError("teacher checkpoint is already stored at half precision")
    sd, rest = _state_dict_of(obj, "teacher checkpoint")
    out = {}
    for k, v in sd.items():
        if v.is_floating_point():
            big = float(v.detach().abs().max()) if v.numel() else 0.0
            if big > HALF_MAX:
                raise DassError(f"teacher checkpoint: '{k}' holds {big:.4g}, beyond float16's {HALF_MAX:.0f}")
            v = v.detach().to(HALF_DTYPE)
        out[k] = v.contiguous()
    record = {"dtype": str(HALF_DTYPE).replace("torch.", ""), "float32_sha256": float32_sha256,
              "float32_state_sha256": tensor_dict_sha256(sd)}
    return {"state_dict": out, **rest, "half": record}


def store_half(src, dst=None) -> dict:
    """Rewrite the float32 teacher file ``src`` at half precision into ``dst`` (default: in place,
    atomically). A file already at half precision is left as it is. Returns the ``half`` record."""
    src = Path(src)
    obj = safe_torch_load(src)
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise DassError(f"{src}: not a teacher checkpoint of the project's layout (no 'state_dict')")
    if "half" in obj:
        if dst is not None and Path(dst) != src:
            atomic_torch_save(obj, dst)
        return obj["half"]
    half = half_checkpoint(obj, file_sha256(src))
    atomic_torch_save(half, src if dst is None else dst)
    return half["half"]


def _state_dict_of(obj, path) -> tuple[dict, dict]:
    """(state dict, the other entries) of a loaded checkpoint object."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd, rest = obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
    elif isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        sd, rest = obj, {}
    else:
        raise DassError(f"{path}: not a teacher checkpoint (expected a state dict or a dict with 'state_dict')")
    if not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise DassError(f"{path}: 'state_dict' must map names to tensors")
    return strip_module_prefix(sd), rest


def _space_of(rest: dict, space: SpaceConfig | None, path) -> SpaceConfig:
    if "space" not in rest:
        if space is None:
            raise DassError(f"{path}: the checkpoint records no space profile; give one (space=<yaml>)")
        return space
    stored = cfgmod.from_dict(SpaceConfig, rest["space"], where=f"{path} (space)")
    diff = None if space is None else space_difference(stored, space)
    if diff is not None:
        raise DassError(f"{path}: teacher was trained in space '{stored.name}' ({diff}={getattr(stored, diff)}), "
                        f"but space '{space.name}' has {diff}={getattr(space, diff)}")
    return stored


def checked_accuracy(value, where: str) -> float:
    """A stored accuracy (percent) as a float, refused unless finite and within [0, 100]."""
    if torch.is_tensor(value) and value.numel() == 1 and not value.dtype == torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):   # True is no 1 %, '95' no number
        raise DassError(f"{where} must be a number, got {value!r:.40}")
    acc = float(value)
    if not 0.0 <= acc <= 100.0:  # also refuses NaN
        raise DassError(f"{where} is {acc}: an accuracy in percent must lie in [0, 100]")
    return acc


def load_teacher(path, space: SpaceConfig | None = None,
                 num_classes: int | None = None) -> tuple[ResNet, dict, dict]:
    """Load a teacher checkpoint; returns ``(net in eval mode on the CPU, state dict, meta)``.

    ``meta``: ``{path, space (SpaceConfig), arch (Arch), num_classes, dataset, metrics, recipe, seed,
    half}`` (``dataset``/``metrics``/``recipe``/``seed`` None when the file does not record them; ``half`` the file's half
    precision record, None for a float32 file). The state dict is float32 either way. Raises a one-line DassError
    when the file's space, architecture or class count differs from what the caller asks for.
    """
    path = Path(path)
    sd, rest = _state_dict_of(safe_torch_load(path), path)
    space = _space_of(rest, space, path)
    arch = teacher_arch(space)
    # the original release stores a model name there ('resnet42'): only a dict is an architecture
    if isinstance(rest.get("arch"), dict) and Arch.from_dict(rest["arch"]) != arch:
        raise DassError(f"{path}: stored architecture is not the teacher of space '{space.name}'")
    sd, classes = check_teacher_state_dict(sd, space, path)
    if "num_classes" in rest and not isinstance(rest["num_classes"], int):
        raise DassError(f"{path}: 'num_classes' must be an integer, got {rest['num_classes']!r:.40}")
    if rest.get("metrics") is not None and not isinstance(rest["metrics"], dict):
        raise DassError(f"{path}: 'metrics' must be a mapping, got {type(rest['metrics']).__name__}")
    if "num_classes" in rest and rest["num_classes"] != classes:
        raise DassError(f"{path}: records {rest['num_classes']} classes but its classifier has {classes}")
    if num_classes is not None and classes != num_classes:
        raise DassError(f"{path}: teacher has {classes} classes, the dataset has {num_classes}")
    net = build(arch, space, classes)
    net.load_state_dict(sd)
    meta = {"path": str(path), "space": space, "arch": arch, "num_classes": classes,
            "dataset": rest.get("dataset"), "metrics": rest.get("metrics"), "recipe": rest.get("recipe"),
            "seed": rest.get("seed"), "half": rest.get("half")}
    return net.eval(), net.state_dict(), meta
