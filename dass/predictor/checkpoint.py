"""The predictor's checkpoint (``best.pt``, format ``dass-predictor-v1``): a :class:`LoadedPredictor`
(model, inner learning rates, space, target, adaptation and input settings) saved as tensors and
primitives only, and loaded with ``weights_only=True`` after checking every value."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .. import config as cfgmod
from ..errors import DassError
from ..io import atomic_torch_save, safe_torch_load
from ..space import SpaceConfig, space_difference, stage_dim
from ..space.remap import REMAPS
from .model import CKPT_FORMAT, InputDims, Predictor, PredictorConfig


@dataclass
class LoadedPredictor:
    """A predictor ready to adapt: model, per-parameter inner learning rates and what it needs.

    ``target``: ``{"kind", "label", "support_default"}`` (see :mod:`dass.predictor.data`);
    ``adapt``: ``{"steps", "first_order"}``; ``inputs``: ``{"noise_seed", "remap", "dataset_feats"}``
    (the database's noise seed and remap strategy of the maps, and its number of dataset-feature rows).
    """
    model: Predictor
    inner_lrs: dict[str, torch.Tensor]
    space: SpaceConfig
    target: dict
    adapt: dict
    inputs: dict
    info: dict = field(default_factory=dict)

    @property
    def input_type(self) -> str:
        return self.model.cfg.input_type


def predictor_state(p: LoadedPredictor) -> dict:
    """The checkpoint dict (tensors and primitives only, loadable with ``weights_only=True``)."""
    return {
        "format": CKPT_FORMAT,
        "space": cfgmod.to_dict(p.space),
        "input_type": p.input_type,
        "predictor_config": cfgmod.to_dict(p.model.cfg),
        "model": {k: v.detach().cpu() for k, v in p.model.state_dict().items()},
        "inner_lrs": {k: v.detach().cpu() for k, v in p.inner_lrs.items()},
        "target": dict(p.target),
        "adapt": dict(p.adapt),
        "inputs": dict(p.inputs),
        "info": dict(p.info),
    }


def save_predictor(p: LoadedPredictor, path) -> None:
    atomic_torch_save(predictor_state(p), path)


def load_predictor(path, space: SpaceConfig | None = None, device="cpu") -> LoadedPredictor:
    """Rebuild a predictor from ``best.pt``; with ``space`` given, refuse a checkpoint of another space."""
    d = safe_torch_load(path)
    where = str(path)
    if not isinstance(d, dict) or d.get("format") != CKPT_FORMAT:
        raise DassError(f"{where}: not a {CKPT_FORMAT} predictor checkpoint")
    keys = ("space", "predictor_config", "model", "inner_lrs", "target", "adapt", "inputs")
    missing = [k for k in keys if k not in d]
    if missing:
        raise DassError(f"{where}: predictor checkpoint lacks '{missing[0]}'")
    for k in ("model", "inner_lrs", "target", "adapt", "inputs"):
        if not isinstance(d[k], dict):
            raise DassError(f"{where}: '{k}' must be a mapping, got {type(d[k]).__name__}")
    ck_space = cfgmod.from_dict(SpaceConfig, d["space"], where=f"{where} (space)")
    if space is not None:
        check_same_space(ck_space, space, where)
    cfg = cfgmod.from_dict(PredictorConfig, d["predictor_config"], where=f"{where} (predictor_config)")
    if "stage_dim" not in (d["predictor_config"].get("dims") or {}):   # saved before the stage encoding existed
        cfg.dims.stage_dim = stage_dim(ck_space)
    if cfg.dims != InputDims.for_space(ck_space):
        raise DassError(f"{where}: predictor input sizes {cfg.dims} do not fit its space '{ck_space.name}'")
    model = Predictor(cfg)
    try:
        model.load_state_dict(d["model"])
    except RuntimeError as e:
        first = str(e).splitlines()[0][:160]
        raise DassError(f"{where}: model weights do not fit the predictor config ({first})") from None
    dev = torch.device(device)
    model.to(dev)
    names = {k for k, _ in model.named_parameters()}
    if set(d["inner_lrs"]) != names:
        raise DassError(f"{where}: inner learning rates do not match the model's parameters")
    check_predictor_values(d, model, where)
    lrs = {k: v.to(dev) for k, v in d["inner_lrs"].items()}
    return LoadedPredictor(model, lrs, ck_space, d["target"], d["adapt"], d["inputs"], d.get("info", {}))


MAX_ADAPT_STEPS = 1000   # most adaptation steps a loaded predictor may ask for (the shipped ones take 1)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_predictor_values(d: dict, model: "Predictor", where: str) -> None:
    """Every value of a predictor checkpoint that scoring reads, checked before use (one DassError
    naming the field): weights and inner learning rates finite, ``target`` a known kind with finite
    numbers, ``adapt.steps`` an integer in [0, MAX_ADAPT_STEPS], ``inputs`` holding what the model
    needs (an integer noise seed >= -1; the proxies' names and batch settings). Buffers may
    hold infinities (a tree prior's open thresholds), never NaN."""
    from .data import TARGETS  # lazy: data imports the database format (not needed to build a model)

    params = {k for k, _ in model.named_parameters()}
    for group in ("model", "inner_lrs"):
        for k, v in d[group].items():
            if not torch.is_tensor(v):
                raise DassError(f"{where}: {group}.{k} must be a tensor")
            # parameters and inner learning rates finite; buffers may hold infinities (a tree's open thresholds)
            finite = group == "inner_lrs" or k in params
            if v.is_floating_point() and not bool((torch.isfinite(v) if finite else ~torch.isnan(v)).all()):
                raise DassError(f"{where}: {group}.{k} has non-finite values (NaN{' or infinite' if finite else ''}): "
                                f"a damaged predictor")
    t = d["target"]
    if t.get("kind") not in TARGETS:
        raise DassError(f"{where}: target.kind must be one of {list(TARGETS)}, got {t.get('kind')!r:.40}")
    if not isinstance(t.get("label", "best_acc"), str):
        raise DassError(f"{where}: target.label must be a name, got {t.get('label')!r:.40}")
    if t["kind"] == "standardized" and not _number(t.get("support_default")):
        raise DassError(f"{where}: target.support_default must be a finite number, got {t.get('support_default')!r:.40}")
    calib = t.get("calib")
    if calib is not None and not (isinstance(calib, (list, tuple)) and len(calib) in (2, 4) and all(map(_number, calib))):
        raise DassError(f"{where}: target.calib must be two or four finite numbers, got {calib!r:.60}")
    steps = d["adapt"].get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= MAX_ADAPT_STEPS:
        raise DassError(f"{where}: adapt.steps must be an integer in [0, {MAX_ADAPT_STEPS}], got {steps!r:.40}")
    if not isinstance(d["adapt"].get("first_order", True), bool):
        raise DassError(f"{where}: adapt.first_order must be true or false")
    inputs = d["inputs"]
    if not isinstance(inputs, dict):
        raise DassError(f"{where}: inputs must be a mapping")
    # what the model reads must be recorded, never filled in by a default the predictor was not trained with
    required = (["noise_seed", "remap"] if model.needs & {"smap", "tmap"} else []) + (
        ["proxies"] if "proxy" in model.needs else [])
    missing = [k for k in required if k not in inputs]
    if missing:
        raise DassError(f"{where}: inputs lacks {', '.join(missing)}, which the model ({model.cfg.input_type}) reads: "
                        f"a damaged or hand-made predictor")
    seed = inputs.get("noise_seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not -1 <= seed < 2 ** 63:   # -1: the release's noise
        raise DassError(f"{where}: inputs.noise_seed must be an integer in [-1, 2^63), got {seed!r:.40}")
    remap = inputs.get("remap", "copy_paste_first")
    if not isinstance(remap, str) or remap not in REMAPS:
        raise DassError(f"{where}: inputs.remap must be one of {', '.join(REMAPS)}, got {remap!r:.40}")
    feats = inputs.get("dataset_feats", 0)   # a record of the training tasks' feature rows (search sets its own)
    if not isinstance(feats, int) or isinstance(feats, bool) or feats < 0:
        raise DassError(f"{where}: inputs.dataset_feats must be an integer >= 0, got {feats!r:.40}")
    if "proxy" in model.needs:
        info = inputs.get("proxies")
        ok = (isinstance(info, dict) and isinstance(info.get("names"), list) and info["names"]
              and all(isinstance(n, str) for n in info["names"])
              and all(isinstance(info.get(k), int) and not isinstance(info.get(k), bool) and info[k] >= (k == "batch_size")
                      for k in ("batch_size", "seed")))
        if not ok:
            raise DassError(f"{where}: inputs.proxies must name the proxies (names) with an integer batch_size >= 1 "
                            f"and seed >= 0")
        mean = info.get("mean")
        if mean is not None and not (isinstance(mean, (list, tuple)) and len(mean) == len(info["names"])
                                     and all(map(_number, mean))):
            raise DassError(f"{where}: inputs.proxies.mean must be one finite number per proxy")


def check_same_space(trained: SpaceConfig, wanted: SpaceConfig, where: str) -> None:
    """DassError unless the two spaces define the same networks (names and class counts may differ)."""
    k = space_difference(trained, wanted)
    if k is not None:
        raise DassError(f"{where}: meta-trained on space '{trained.name}' ({k}={getattr(trained, k)}), which "
                        f"differs from space '{wanted.name}' ({k}={getattr(wanted, k)})")
