"""The search stage (``python -m dass.search --config configs/search/cpu.yaml teacher=<pt> predictor=<best.pt>
run_dir=<dir>``; :func:`run` is its public entry).

Rapid student search on a new task: adapt the meta-trained predictor on the teacher (its own map,
encoding and accuracy), score candidates, keep the best under the MACs/parameter budgets.

* ``strategy``: a strategy registered in :mod:`dass.search.strategies` (``pool``: ``pool_size``
  distinct architectures sampled uniformly under the budgets, seeded by ``seed``, or the
  architectures of ``candidates=<file>``, see :func:`read_candidates`, those over budget dropped;
  ``evolution``: (mu + lambda) evolution with the predictor as fitness). A ``.pt`` candidates file
  may carry the maps (``fmap``, ``teacher.fmap``) and the support label (``teacher.best_acc``):
  they are used instead of computed ones (needed for predictors trained on an imported original
  database, whose ``noise_seed`` is -1).

The teacher (:func:`dass.teacher.checkpoint.load_teacher`) must belong to the predictor's space. Its accuracy
(the support label) comes from its checkpoint's ``metrics.best_acc``, else it is evaluated on the
dataset's test split; ``dataset``/``data_root`` are needed only then and when the predictor reads
dataset features (D, sampled as the database builder does, with the predictor's noise seed).

Outputs in ``run_dir``: ``top.json`` (``{"top": [{"arch", "pred_acc", "score", "macs", "params",
"rank"}, ...], "dataset", "teacher", "predictor", "budget", "seconds", ...}``, best first; what
``python -m dass.kd student_file=<top.json>`` reads) and ``scores.csv`` (every candidate, by rank).
A predictor meta-trained with zero-cost proxies as inputs (``proxies``) scores every candidate with
the proxies at their meta-training mean, then computes them (on train images of ``dataset``) for
the ``proxy_shortlist`` best only and re-scores those, which rank first (``proxies_computed`` in
``scores.csv``); proxies of 10,000 candidates would take minutes on a CPU. The shortlist's NASWOT,
synflow and DisWOT are computed in batched masked passes of the teacher (:mod:`dass.proxies.masked`):
10,000 candidates with the shipped cpu predictor take ~4.3 CPU seconds (``bench/bench_search.py``).
With ``budget.latency_ms`` (:mod:`dass.search.budget`), candidates whose latency predicted by the
space's latency model (:mod:`dass.space.latency`, settings ``latency.*``) exceeds it are not sampled
(or are dropped from a candidates file); every row then has ``latency_ms`` (predicted), and the best
are re-measured (``latency_ms_measured``): a pick measured over ``budget.latency_ms x (1 +
latency.tolerance)`` is replaced by the next candidate (``top.json``: ``latency.replaced_ranks``).
``pred_acc`` is in percent (``teacher accuracy x`` the predicted accuracy relative to the
teacher's, :func:`dass.predictor.data.to_accuracy`); null only for an uncalibrated predictor
trained on ``standardized`` targets (checkpoints from before calibration), whose ``score`` only ranks.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import config as cfgmod
from .. import hashing, runid
from ..cli import setup_run_dir
from ..device import resolve_device
from ..errors import DassError
from ..io import atomic_write_json, safe_torch_load, write_csv
from ..predictor import proxy_inputs
from ..predictor.proxy_inputs import ProxySetting
from ..predictor.adapt import adapted_params, predict
from ..predictor.data import (gives_accuracy, student_inputs, support_inputs, support_target, take, task_context,
                              task_stats, to_accuracy)
from ..predictor.checkpoint import LoadedPredictor, load_predictor
from ..space import Arch, SpaceConfig, space_difference, validate
from ..space.arch import read_candidates_file
from ..space.latency import measure_arch
from ..task import SupportPoint, Task
from ..teacher.checkpoint import checked_accuracy
from .budget import Budget, feasible_budget, measured_picks
from .config import SearchConfig
from .strategies import Found, Problem, run_strategy

log = logging.getLogger("dass.search")
# Candidates mapped and scored per call of the batched map builder (bounds memory: 2048 paper-space
# maps are 0.5 GB in float32) while building the masked teacher only once per chunk.
SCORE_CHUNK = 2048
# ----------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Candidates:
    """Architectures of a candidates file, with the maps it may carry (rows aligned with ``archs``).

    ``fmap``: ``N x C x r x r`` student maps (used instead of computing them); ``teacher_fmap``
    (``C x r x r``) and ``teacher_acc`` (percent): the support point, from the file's ``teacher``
    entry. Files converted from the original release carry all three (see docs/COMPAT.md).
    """
    archs: list[Arch]
    fmap: torch.Tensor | None = None
    teacher_fmap: torch.Tensor | None = None
    teacher_acc: float | None = None

    def subset(self, keep: list[int]) -> "Candidates":
        fmap = None if self.fmap is None else self.fmap[torch.as_tensor(keep, dtype=torch.long)]
        return Candidates([self.archs[i] for i in keep], fmap, self.teacher_fmap, self.teacher_acc)


def read_candidates(path, space: SpaceConfig) -> Candidates:
    """A JSON list of ``{depths, widths}`` (or of rows with such an ``arch``, e.g. a net-sample list),
    or a ``.pt`` dict with ``archs`` and optionally ``fmap`` and ``teacher: {fmap, best_acc}``;
    repeated architectures are dropped (first kept)."""
    path = Path(path)
    items, d = read_candidates_file(path)
    if not isinstance(items, list) or not items:
        raise DassError(f"{path}: expected a non-empty list of architectures")
    archs, keep, seen = [], [], set()
    for i, a in enumerate(items):
        try:
            arch = validate(Arch.from_dict(a["arch"] if isinstance(a, dict) and "arch" in a else a), space)
        except DassError as e:
            raise DassError(f"{path}: candidate {i}: {e}") from None
        archs.append(arch)
        if arch not in seen:
            seen.add(arch)
            keep.append(i)
    r = space.stage_resolutions()[-1]
    shape = (space.stage_widths[-1], r, r)
    fmap = d.get("fmap")
    if fmap is not None and (not torch.is_tensor(fmap) or tuple(fmap.shape) != (len(items), *shape)):
        raise DassError(f"{path}: 'fmap' must be a tensor of shape {(len(items), *shape)}")
    teacher = d.get("teacher") or {}
    if not isinstance(teacher, dict):
        raise DassError(f"{path}: 'teacher' must be a mapping with 'fmap' and 'best_acc'")
    t_fmap, acc = teacher.get("fmap"), teacher.get("best_acc")
    if t_fmap is not None and (not torch.is_tensor(t_fmap) or tuple(t_fmap.shape) != shape):
        raise DassError(f"{path}: 'teacher.fmap' must be a tensor of shape {shape}")
    for name, m in (("fmap", fmap), ("teacher.fmap", t_fmap)):   # NaN maps would give NaN scores, arbitrary picks
        if m is not None and not bool(torch.isfinite(m.half().float()).all()):
            raise DassError(f"{path}: '{name}' has non-finite values (NaN or beyond float16)")
    full = Candidates(archs, None if fmap is None else fmap.half(), None if t_fmap is None else t_fmap.half(),
                      None if acc is None else checked_accuracy(acc, f"{path}: teacher.best_acc"))
    return full.subset(keep)


class AdaptedScorer:
    """The predictor adapted to one task's teacher (its :meth:`~dass.task.Task.support_point`); scores
    architectures in batches, their maps computed by the task (:meth:`~dass.task.Task.student_maps`)
    unless given to :meth:`score`. ``dset``: the task's dataset features where the predictor reads them."""

    def __init__(self, pred: LoadedPredictor, task: Task, support: SupportPoint, dset: torch.Tensor | None = None,
                 batch_size: int = 256, progress: bool = False, proxy_batch: dict | None = None):
        self.pred, self.task, self.space = pred, task, pred.space
        self.batch_size, self.device, self.progress = batch_size, task.device, progress
        self.needs = pred.model.needs
        self.teacher_acc = support.accuracy
        self.context = task_context(self.needs, support.fmap, dset, task_stats(support.accuracy, task.num_classes))
        self.proxy_batch = proxy_batch
        inputs = support_inputs(support, self.space, task.num_classes, self.needs, dset, len(pred.model.cfg.proxies))
        label = torch.tensor([support_target(pred.target, support.accuracy)], device=self.device)
        self.params = adapted_params(pred.model, pred.inner_lrs, take(inputs, device=self.device), label,
                                     int(pred.adapt["steps"]))
        self.context = take(self.context, device=self.device)

    def score(self, archs: list[Arch], fmap: torch.Tensor | None = None, proxies: bool = False) -> torch.Tensor:
        """One score per architecture; their maps are ``fmap`` (rows aligned) or computed
        ``SCORE_CHUNK`` architectures at a time. A predictor reading zero-cost proxies gets them
        computed with ``proxies=True``, else their meta-training mean (the pre-filter of
        :func:`shortlist_rescore`)."""
        out = []
        for i in tqdm(range(0, len(archs), SCORE_CHUNK), desc="scoring", disable=not self.progress, leave=False):
            chunk = archs[i:i + SCORE_CHUNK]
            maps = None
            if "smap" in self.needs:
                maps = fmap[i:i + SCORE_CHUNK] if fmap is not None else self.task.student_maps(chunk, self.batch_size)
            rows = take(student_inputs(chunk, self.space, self.task.num_classes, self.needs, maps,
                                       proxy=self._proxy_rows(chunk, proxies) if "proxy" in self.needs else None),
                        device=self.device)
            out.append(predict(self.pred.model, self.params, {**rows, **self.context}).float().cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def _proxy_rows(self, archs: list[Arch], compute: bool) -> torch.Tensor:
        info = self.pred.inputs["proxies"]
        if not compute:
            return torch.tensor(info["mean"], dtype=torch.float32).expand(len(archs), -1)
        setting = ProxySetting(self.space, self.task.num_classes, self.task.teacher_sd, self.task.remap, self.device)
        return proxy_inputs.features(info["names"], archs, setting, self.proxy_batch, self.progress)

    def accuracy(self, scores: torch.Tensor) -> torch.Tensor | None:
        return to_accuracy(self.pred.target, scores, self.teacher_acc or 0.0)


def shortlist_rescore(scorer: AdaptedScorer, archs: list[Arch], scores: torch.Tensor, k: int, fmap=None):
    """For a predictor reading zero-cost proxies: the ``k`` best by the pre-filter score (proxies at
    their mean) are re-scored with their proxies computed. Returns ``(scores, order, shortlisted)``:
    the shortlist ranks first (by its new scores), the rest after it by their pre-filter scores."""
    k = min(k, len(archs))
    top = torch.argsort(-scores, stable=True)[:k]
    sub_fmap = None if fmap is None else fmap[top]
    new = scorer.score([archs[i] for i in top.tolist()], sub_fmap, proxies=True)
    scores = scores.clone()
    scores[top] = new
    short = torch.zeros(len(archs), dtype=torch.bool)
    short[top] = True
    order = sorted(range(len(archs)), key=lambda i: (not bool(short[i]), -float(scores[i])))
    return scores, np.array(order), short


# ----------------------------------------------------------------------------------------------
# Run


def _check_maps_available(pred: LoadedPredictor, listed: Candidates | None, noise_seed: int) -> None:
    """A negative noise seed (an imported original database) means maps cannot be computed here."""
    if noise_seed >= 0:
        return
    needs = pred.model.needs
    missing = [what for what, need, have in (
        ("'fmap' (student maps)", "smap" in needs, listed is not None and listed.fmap is not None),
        ("'teacher.fmap'", bool({"smap", "tmap"} & needs), listed is not None and listed.teacher_fmap is not None))
        if need and not have]
    if missing:
        raise DassError(f"the predictor's maps use noise_seed {noise_seed} (the original release's noise, not "
                        f"reproducible here): give candidates=<.pt file with {' and '.join(missing)}> "
                        f"or noise_seed=<n>")


def check_teacher_space(teacher, space, pred_path: Path) -> None:
    """A given teacher that records a space must record the predictor's: else one error naming both
    files and the field that differs (two spaces may share a name)."""
    ck = safe_torch_load(teacher)
    if not (isinstance(ck, dict) and isinstance(ck.get("space"), dict)):
        return      # no space recorded: load_teacher checks the weights' shapes against the predictor's
    stored = cfgmod.from_dict(SpaceConfig, ck["space"], where=f"{teacher} (space)")
    k = space_difference(stored, space)
    if k is not None:
        raise DassError(f"teacher={teacher} (space '{stored.name}', {k}={getattr(stored, k)}) and predictor={pred_path} "
                        f"(space '{space.name}', {k}={getattr(space, k)}) are of different spaces: give a teacher of "
                        f"the predictor's space, or a predictor meta-trained on the teacher's")


def run(cfg: SearchConfig) -> dict:
    """Search and write ``top.json`` / ``scores.csv``; returns the ``top.json`` content."""
    t0 = time.perf_counter()
    cfg.check()
    device = resolve_device(cfg.device)
    pred = load_predictor(cfg.predictor, device=device)
    space = pred.space
    check_teacher_space(cfg.teacher, space, Path(cfg.predictor))
    noise_seed = cfg.noise_seed if cfg.noise_seed is not None else int(pred.inputs.get("noise_seed", 0))
    task = Task.for_teacher(space, cfg.teacher, cfg.dataset or "", cfg.data_root or "", noise_seed=noise_seed,
                            remap=str(pred.inputs.get("remap", "copy_paste_first")), device=device)
    num_classes = task.num_classes
    teacher_acc = task.recorded_accuracy()
    budget = feasible_budget(cfg.budget, space, num_classes, cfg.latency)
    listed = read_candidates(cfg.candidates, space) if cfg.candidates else None
    if listed is not None and listed.teacher_acc is not None:
        # the support label recorded with precomputed maps
        teacher_acc = checked_accuracy(listed.teacher_acc, f"{cfg.candidates}: teacher.best_acc")
    _check_maps_available(pred, listed, noise_seed)
    needs_acc = gives_accuracy(pred.target)
    if (((needs_acc and teacher_acc is None) or {"dset", "proxy"} & pred.model.needs)
            and not (cfg.dataset and cfg.data_root)):
        raise DassError("give dataset=<name> and data_root=<folder>: needed for the teacher's accuracy "
                        "(absent from its checkpoint), for dataset features (input D) or for zero-cost proxies")
    test = task.test if needs_acc and teacher_acc is None else None
    train = task.train if {"dset", "proxy"} & pred.model.needs else None
    data = {k: hashing.dataset_hash(a) for k, a in (("train", train), ("test", test)) if a is not None}
    ident = runid.identity("search", cfg, teacher=hashing.file_hash(cfg.teacher),
                           predictor=hashing.file_hash(cfg.predictor), data=data,
                           candidates=hashing.file_hash(cfg.candidates) if cfg.candidates else None)
    run_dir = setup_run_dir(cfg.run_dir, cfg, "search", identity=ident)
    if test is not None:
        teacher_acc = task.teacher_accuracy()
        log.info("teacher accuracy on the test split: %.2f%%", teacher_acc)
    dset = None
    if "dset" in pred.model.needs:
        dset = task.dataset_features(cfg.feats_per_class, cfg.max_feats)
    proxy_batch = None
    if "proxy" in pred.model.needs:
        info = pred.inputs["proxies"]
        proxy_batch = task.proxy_batches(info["names"], int(info["batch_size"]), int(info["seed"]))
    support = task.support_point(teacher_acc, None if listed is None else listed.teacher_fmap)
    scorer = AdaptedScorer(pred, task, support, dset, cfg.batch_size, cfg.progress, proxy_batch)
    found = run_strategy(cfg.strategy, Problem(scorer, space, budget, cfg, listed), np.random.default_rng(cfg.seed))
    if proxy_batch is not None:
        found.scores, found.order, found.shortlisted = shortlist_rescore(scorer, found.archs, found.scores,
                                                                         cfg.proxy_shortlist, found.fmap)
    result = _write_results(cfg, run_dir, scorer, found, budget, teacher_acc, t0)
    best = result["top"][0]
    acc = "" if best["pred_acc"] is None else f", predicted accuracy {best['pred_acc']:.2f}%"
    print(f"scored {len(found.archs)} candidates in {result['seconds']:.1f} s; pick: {Arch.from_dict(best['arch'])} "
          f"({best['macs']} MACs, {best['params']} params{acc})")
    return result


def _write_results(cfg, run_dir: Path, scorer: AdaptedScorer, found: Found, budget: Budget, teacher_acc,
                   t0) -> dict:
    archs, scores, order, shortlisted = found.archs, found.scores, found.order, found.shortlisted
    if order is None:
        order = np.argsort(-scores.numpy(), kind="stable")
    accs = scorer.accuracy(scores)
    rows = []
    for rank, i in enumerate(order.tolist(), start=1):
        m, p = budget.cost(archs[i])
        rows.append({"rank": rank, "score": float(scores[i]),
                     "pred_acc": None if accs is None else round(float(accs[i]), 4),
                     "macs": m, "params": p, "arch": archs[i].to_dict()})
        if shortlisted is not None:
            rows[-1]["proxies_computed"] = bool(shortlisted[i])
    top, latency = rows[:cfg.top_k], None
    if budget.max_latency_ms is not None:
        top, latency = _latency_picks(cfg, budget, rows)
    result = {"top": top, "dataset": cfg.dataset, "teacher": cfg.teacher, "predictor": cfg.predictor,
              "budget": budget.as_dict(), "seconds": round(time.perf_counter() - t0, 3), "strategy": cfg.strategy,
              "num_candidates": len(archs), "teacher_acc": teacher_acc, "input_type": scorer.pred.input_type,
              **({"latency": latency} if latency else {})}
    write_csv(run_dir / "scores.csv", [{**r, "arch": json.dumps(r["arch"], separators=(",", ":"))} for r in rows])
    atomic_write_json(run_dir / "top.json", result)
    return result


def _latency_picks(cfg: SearchConfig, budget: Budget, rows: list[dict]) -> tuple[list[dict], dict]:
    """Every row gets its predicted ``latency_ms``; the best are re-measured (``latency_ms_measured``)
    and a pick measured over budget (beyond ``latency.tolerance``) is replaced by the next row."""
    model = budget.latency
    ranked = [Arch.from_dict(r["arch"]) for r in rows]
    for r, a in zip(rows, ranked):
        r["latency_ms"] = round(model.predict_ms(a), 4)
        r["latency_ms_measured"] = None
    kept, measured = measured_picks(ranked, cfg.top_k, lambda a: measure_arch(a, model.space, model.num_classes,
                                                                              cfg.latency),
                                    budget.max_latency_ms, cfg.latency.tolerance)
    for i, ms in measured.items():
        rows[i]["latency_ms_measured"] = round(ms, 4)
    replaced = [rows[i]["rank"] for i in measured if i not in kept]
    info = {"setting": model.setting, "model": cfg.latency.model, "table": str(model.path),
            "tolerance": cfg.latency.tolerance, "replaced_ranks": replaced}
    return [rows[i] for i in kept], info
