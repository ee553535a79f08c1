"""The predictor stage, meta-training (``python -m dass.predictor --config configs/predictor/cpu.yaml db=<folder>
run_dir=<folder>``; :func:`run` is its public entry).

Bilevel (MAML) meta-training of the predictor over the database's ``meta_train`` tasks. Each
episode, for every training task: adapt on the support set (the teacher alone, labelled with its
own accuracy) with ``inner_steps`` steps and learnable per-parameter inner learning rates, then
score ``n_query`` sampled students with the adapted parameters; the outer loss is the mean over
tasks of MSE (+ ``rank_loss_weight`` x a pairwise logistic ranking loss), minimised with Adam over
the meta-parameters and the inner learning rates. Every ``eval_every`` episodes the mean Spearman
over ``meta_valid`` tasks picks the best checkpoint.

Design switches (``configs/predictor/*.yaml``): ``input_type``, ``arch_encoder``,
``cost_features`` (log MACs/params as inputs), ``cost_prior`` (a least-squares cost prior plus a
learned residual, :mod:`dass.predictor.model`), ``prior_onehot`` (the prior also reads the one-hot
encoding: a ridge fit with penalty ``prior_ridge``), ``prior_model: trees`` (the prior is boosted
trees, :mod:`dass.predictor.boosting`, instead), ``proxies`` (zero-cost proxies, DisWOT
included, as scalars beside the cost), ``target`` (``raw`` / ``relative`` / per-task
``standardized``), ``rank_loss_weight``, ``first_order``, ``eval_at_start`` (the untrained model,
i.e. the cost prior alone, competes for the checkpoint).

After training, the best checkpoint gets a linear calibration from its output to accuracy relative
to the teacher's, fitted on the meta-training students (:func:`calibrate`), so every predictor
gives a predicted accuracy in percent (``pred_acc`` in search).

Run folder: ``best.pt`` (:func:`dass.predictor.load_predictor`), ``last.pt`` (resume state,
rewritten atomically every ``checkpoint_every`` episodes; a rerun with the same folder continues
from it), ``history.csv``, ``metrics.json`` (best validation Spearman; the ``meta_valid`` and
``meta_test`` correlations of the best checkpoint, per task and mean, including the MACs-controlled
``partial_spearman``; MACs/params baselines; the calibration and the mean absolute error of the
predicted accuracy per task, ``pred_acc_mae``) and ``config.yaml``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm import tqdm

from .. import config as cfgmod
from .. import runid
from ..cli import setup_run_dir
from ..correlation import METRICS, PARTIAL, mean_metrics, nanmean, selection_value
from ..device import resolve_device
from ..database.format import db_file_hashes
from ..errors import DassError
from ..io import atomic_torch_save, atomic_write_json, safe_torch_load, write_csv
from ..proxies.cache import ProxyCache
from . import proxy_inputs
from .adapt import adapt, init_inner_lrs, predict_task
from .config import MetaTrainConfig
from .data import (TaskData, cost_features, fit_calibration, load_tasks, make_target, sample_query,
                   student_targets, support_target, take, to_accuracy)
from .boosting import BoostedTrees
from .linear import Ridge
from .metrics import evaluate_predictor, task_metrics
from .checkpoint import LoadedPredictor, load_predictor, save_predictor
from .model import InputDims, Predictor, PredictorConfig, prior_inputs, stage_need

log = logging.getLogger("dass.predictor")

# Seed of the proxies' image batch: the same batch for every meta-training seed.
PROXY_SEED = 0


def pairwise_rank_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss ``log(1 + exp(-(p_i - p_j) / s))`` over pairs with ``y_i > y_j``;
    ``s`` = std of ``y`` (so the loss does not depend on the target's scale)."""
    better = y[:, None] > y[None, :]
    if not bool(better.any()):
        return pred.sum() * 0.0
    scale = y.std().clamp_min(1e-8).detach()
    diff = (pred[:, None] - pred[None, :]) / scale
    return F.softplus(-diff[better]).mean()


def _prior_inputs(t: TaskData, cfg: MetaTrainConfig) -> torch.Tensor:
    """The prior's inputs of a task's students: cost (stage, proxy, task statistics) scalars (and the
    one-hot encoding)."""
    needs = ({"cost"} | ({stage_need(cfg.stage_width)} if cfg.stage_features else set()) | ({"proxy"} if cfg.proxies else set())
             | ({"task"} if cfg.task_stats else set()))
    return prior_inputs({**t.inputs(needs), "onehot": t.onehot}, cfg)


def fit_prior(cfg: MetaTrainConfig, X: np.ndarray, y: np.ndarray):
    """The prior fitted on the meta-train students' prior inputs ``X`` (:func:`_prior_inputs`) and
    targets ``y``: boosted trees (``prior_model: trees``), or a ridge regression, least squares when
    the prior reads the cost scalars alone (penalty ``prior_ridge`` with ``prior_onehot`` or
    ``prior_interactions``). Either has ``predict(X)``."""
    if cfg.prior_model == "trees":
        return BoostedTrees(cfg.prior_rounds, 0.05, cfg.prior_depth, min_leaf=20).fit(X, y)
    return Ridge().fit(X, y, cfg.prior_ridge if cfg.prior_onehot or cfg.prior_interactions else 0.0)


class MetaTrainer:
    """The state of one meta-training run (model, inner learning rates, optimiser, progress)."""

    def __init__(self, cfg: MetaTrainConfig, space, tasks: dict[str, list[TaskData]], device: torch.device):
        self.cfg, self.space, self.device = cfg, space, device
        self.train, self.valid = tasks["meta_train"], tasks["meta_valid"]
        torch.manual_seed(cfg.seed)
        pcfg = PredictorConfig(InputDims.for_space(space), cfg.input_type, cfg.arch_encoder, cfg.cost_features,
                               cfg.model, cfg.cost_prior, list(cfg.proxies), cfg.prior_onehot,
                               cfg.stage_features, cfg.prior_model, cfg.prior_rounds, cfg.prior_depth,
                               list(cfg.task_stats), cfg.prior_interactions, cfg.stage_width)
        self.model = Predictor(pcfg).to(device)
        self.needs = self.model.needs
        self.target = make_target(cfg.target, cfg.label, self.train)
        self.targets = {t.key: student_targets(cfg.target, t.acc, t.teacher_acc) for t in self.train}
        y = torch.cat(list(self.targets.values()))
        self.model.set_output_bias(float(y.mean()))
        if cfg.cost_prior:
            X = torch.cat([_prior_inputs(t, cfg) for t in self.train]).double().numpy()
            prior = fit_prior(cfg, X, y.double().numpy())
            if cfg.prior_model == "trees":
                self.model.set_tree_prior(prior)
            else:
                self.model.set_prior(prior.coef, prior.bias)
        self.inner_lrs = init_inner_lrs(self.model, cfg.inner_lr_init)
        outer = list(self.model.parameters())
        if cfg.learn_inner_lr:
            outer += list(self.inner_lrs.values())
        else:
            for v in self.inner_lrs.values():
                v.requires_grad_(False)
        self.opt = torch.optim.Adam(outer, lr=cfg.outer_lr)
        self.episode = 0
        self.best = -float("inf")
        self.best_episode = 0
        self.history: list[dict] = []
        self.loss_sum, self.loss_count, self.seconds = 0.0, 0, 0.0

    # -- one outer step -------------------------------------------------------------------------
    def episode_tasks(self, rng: np.random.Generator) -> list:
        """The meta-batch of an episode: every meta-train task, or ``meta_batch`` of them drawn
        without replacement with the episode's generator (the same on a resumed run), in their order."""
        k = self.cfg.meta_batch
        if k <= 0 or k >= len(self.train):
            return list(self.train)
        return [self.train[i] for i in sorted(rng.choice(len(self.train), size=k, replace=False))]

    def step(self) -> float:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.episode])
        self.opt.zero_grad(set_to_none=True)
        losses = []
        for task in self.episode_tasks(rng):
            params = dict(self.model.named_parameters())
            support = take(task.support(self.needs), device=self.device)
            label = torch.tensor([support_target(self.target, task.teacher_acc)], device=self.device)
            adapted = adapt(self.model, params, self.inner_lrs, support, label, cfg.inner_steps, cfg.first_order)
            q = sample_query(len(task), cfg.n_query, rng)
            pred = functional_call(self.model, adapted, (take(task.inputs(self.needs), q, self.device),))
            y = self.targets[task.key][q].to(self.device)
            loss = F.mse_loss(pred, y)
            if cfg.rank_loss_weight > 0:
                loss = loss + cfg.rank_loss_weight * pairwise_rank_loss(pred, y)
            losses.append(loss)
        loss = torch.stack(losses).mean()
        if not torch.isfinite(loss):
            raise DassError(f"meta-training diverged at episode {self.episode + 1}: loss is {float(loss.detach())} "
                            f"(lower outer_lr or inner_lr_init)")
        loss.backward()
        self.opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise DassError(f"meta-training diverged at episode {self.episode + 1}: the step made weights "
                            f"non-finite (lower outer_lr or inner_lr_init)")
        self.episode += 1
        return float(loss.detach())

    def valid_spearman(self) -> float:
        rs = [task_metrics(predict_task(self.model, self.inner_lrs, self.target, self.cfg.inner_steps, t,
                                        self.device), t)["spearman"] for t in self.valid]
        return selection_value(nanmean(rs))

    def predictor(self) -> LoadedPredictor:
        first = self.train[0]
        inputs = {"noise_seed": first.noise_seed, "remap": first.remap,
                  "dataset_feats": 0 if first.dset is None else int(first.dset.shape[0])}
        if self.cfg.proxies:
            inputs["proxies"] = {"names": list(self.cfg.proxies), "batch_size": self.cfg.proxy_batch_size,
                                 "seed": PROXY_SEED,
                                 "mean": torch.cat([t.proxy for t in self.train]).mean(0).tolist()}
        return LoadedPredictor(self.model, self.inner_lrs, self.space, self.target,
                               {"steps": self.cfg.inner_steps, "first_order": self.cfg.first_order}, inputs,
                               {"episode": self.episode, "valid_spearman": self.best, "db": str(self.cfg.db)})

    # -- resume state ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {"config": cfgmod.to_dict(self.cfg), "episode": self.episode,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "inner_lrs": {k: v.detach().cpu() for k, v in self.inner_lrs.items()},
                "optimizer": self.opt.state_dict(), "torch_rng": torch.get_rng_state(),
                "best": self.best, "best_episode": self.best_episode, "history": self.history,
                "loss_sum": self.loss_sum, "loss_count": self.loss_count, "seconds": self.seconds}

    def restore(self, d: dict, where: str) -> None:
        old, new = d["config"], cfgmod.to_dict(self.cfg)
        for k in new:
            if k not in self.cfg.IDENTITY_FREE and old.get(k) != new[k]:
                raise DassError(f"{where} was written with {k}={old.get(k)!r}, now {k}={new[k]!r}: use a new "
                                f"run_dir, or resume=false to start over")
        self.model.load_state_dict(d["model"])
        with torch.no_grad():
            for k, v in self.inner_lrs.items():
                v.copy_(d["inner_lrs"][k])
        self.opt.load_state_dict(d["optimizer"])
        torch.set_rng_state(d["torch_rng"])
        self.episode, self.best, self.best_episode = int(d["episode"]), float(d["best"]), int(d["best_episode"])
        self.history = list(d["history"])
        self.loss_sum, self.loss_count, self.seconds = float(d["loss_sum"]), int(d["loss_count"]), float(d["seconds"])


def run(cfg: MetaTrainConfig) -> dict:
    """Meta-train (or resume) into ``cfg.run_dir``; prints the best validation and the meta-test Spearman
    and returns the metrics written to ``metrics.json``."""
    cfg.check()
    device = resolve_device(cfg.device)
    space, tasks = load_tasks(cfg.db, cfg.label)
    for split in ("meta_train", "meta_valid"):
        if not tasks[split]:
            raise DassError(f"{cfg.db}: no {split} tasks (meta-training needs meta_train and meta_valid)")
    if cfg.proxies:
        cache = ProxyCache(cfg.proxy_cache or str(Path(cfg.run_dir) / "proxy_cache"),
                           read_only=cfg.proxy_read_only_caches)
        proxy_inputs.attach(sum(tasks.values(), []), cfg.proxies, cfg.data_root, cfg.proxy_batch_size,
                            PROXY_SEED, cache, device, cfg.progress)
    trainer = MetaTrainer(cfg, space, tasks, device)
    if "dset" in trainer.needs:
        for t in sum(tasks.values(), []):
            if t.dset is None:
                raise DassError(f"input_type {cfg.input_type} reads dataset features, task {t.key} has none")
    files = db_file_hashes(cfg.db)
    ident = runid.identity("predictor", cfg, db=files)
    run_dir = setup_run_dir(cfg.run_dir, cfg, "predictor", identity=ident)
    last = run_dir / "last.pt"
    if cfg.resume and last.is_file():
        trainer.restore(safe_torch_load(last), str(last))
        log.info("resumed from %s at episode %d", last, trainer.episode)
    log.info("meta-training on %d tasks (valid %d, test %d), space '%s', input %s, target %s, device %s",
             len(trainer.train), len(trainer.valid), len(tasks["meta_test"]), space.name,
             trainer.model.cfg.input_type, cfg.target, device)
    _loop(trainer, run_dir)
    metrics = _finish(trainer, tasks, run_dir, device)
    mean = metrics["meta_test_mean"]
    test = f"{mean['spearman']:.4f}" if mean else "n/a (no meta_test tasks)"
    print(f"best valid Spearman {metrics['best_valid_spearman']:.4f} (episode {metrics['best_episode']}); "
          f"meta-test Spearman {test}; outputs in {run_dir}")
    return metrics


def _loop(trainer: MetaTrainer, run_dir: Path) -> None:
    cfg = trainer.cfg
    bar = tqdm(total=cfg.episodes, initial=min(trainer.episode, cfg.episodes), desc="meta-train",
               disable=not cfg.progress, dynamic_ncols=True)
    if cfg.eval_at_start and trainer.episode == 0 and not trainer.history:
        _validate(trainer, run_dir, 0.0)
    while trainer.episode < cfg.episodes:
        t0 = time.perf_counter()
        trainer.loss_sum += trainer.step()
        trainer.loss_count += 1
        ep = trainer.episode
        if ep % cfg.eval_every == 0 or ep == cfg.episodes:
            rho = _validate(trainer, run_dir, time.perf_counter() - t0)
            bar.set_postfix(loss=f"{trainer.history[-1]['train_loss']:.4g}", valid=f"{rho:.3f}",
                            best=f"{trainer.best:.3f}")
        trainer.seconds += time.perf_counter() - t0
        if ep % cfg.checkpoint_every == 0 or ep == cfg.episodes:
            atomic_torch_save(trainer.state(), run_dir / "last.pt")
        bar.update(1)
    bar.close()


def _validate(trainer: MetaTrainer, run_dir: Path, step_seconds: float) -> float:
    """Validate now; keep ``best.pt`` when it is the best so far (or nothing was saved yet)."""
    ep = trainer.episode
    rho = trainer.valid_spearman()
    if rho > trainer.best or not (run_dir / "best.pt").is_file():
        trainer.best, trainer.best_episode = rho, ep
        save_predictor(trainer.predictor(), run_dir / "best.pt")
    loss = trainer.loss_sum / trainer.loss_count if trainer.loss_count else float("nan")
    trainer.history.append({"episode": ep, "train_loss": loss, "valid_spearman": rho,
                            "best_valid_spearman": trainer.best,
                            "seconds": round(trainer.seconds + step_seconds, 3)})
    trainer.loss_sum, trainer.loss_count = 0.0, 0
    write_csv(run_dir / "history.csv", trainer.history)
    return rho


def calibrate(pred: LoadedPredictor, tasks: list[TaskData], valid: list[TaskData] = ()) -> None:
    """Fit ``pred.target["calib"]`` (accuracy relative to the teacher's from the adapted output,
    :func:`dass.predictor.data.fit_calibration`) on ``tasks``' students: the line in the output, or,
    when its mean absolute error on the ``valid`` tasks is lower, the fit that also reads the
    teacher's accuracy (the choice is made on meta-valid, as the checkpoint's; tried only when the
    training tasks have at least three distinct teacher accuracies, which its four terms need)."""
    dev = next(pred.model.parameters()).device
    outs = [predict_task(pred.model, pred.inner_lrs, pred.target, int(pred.adapt["steps"]), t, dev) for t in tasks]
    args = (outs, [t.acc for t in tasks], [t.teacher_acc for t in tasks])
    pred.target["calib"] = fit_calibration(*args)
    if not valid or len({round(float(t.teacher_acc), 6) for t in tasks}) < 3:
        return
    valid_out = {t.key: predict_task(pred.model, pred.inner_lrs, pred.target, int(pred.adapt["steps"]), t, dev)
                 for t in valid}
    line = nanmean(accuracy_errors(pred, valid, valid_out).values())
    aware = fit_calibration(*args, teacher_terms=True)
    line_calib, pred.target["calib"] = pred.target["calib"], aware
    if not nanmean(accuracy_errors(pred, valid, valid_out).values()) < line:
        pred.target["calib"] = line_calib


def accuracy_errors(pred: LoadedPredictor, tasks: list[TaskData], outputs: dict | None = None) -> dict[str, float]:
    """Mean absolute error (accuracy points) of the predicted accuracy, per task; ``outputs`` (task key
    -> the adapted predictor's output) saves predicting again what a caller already predicted."""
    out = {}
    for t in tasks:
        y = outputs[t.key] if outputs is not None else predict_task(
            pred.model, pred.inner_lrs, pred.target, int(pred.adapt["steps"]), t, next(pred.model.parameters()).device)
        out[t.key] = float((to_accuracy(pred.target, y, t.teacher_acc) - t.acc).abs().mean())
    return out


def _baselines(tasks: list[TaskData]) -> dict:
    """Mean correlations of MACs and of parameter count with the students' accuracies."""
    out = {}
    for i, name in enumerate(("log_macs", "log_params")):
        per = {t.key: task_metrics(cost_features(t.archs, t.space, t.num_classes)[:, i], t) for t in tasks}
        out[name] = mean_metrics(per, METRICS + (PARTIAL,))
    return out


def _finish(trainer: MetaTrainer, tasks: dict, run_dir: Path, device) -> dict:
    best = load_predictor(run_dir / "best.pt", trainer.space, device)
    if "calib" not in best.target:
        calibrate(best, trainer.train, tasks["meta_valid"])
        save_predictor(best, run_dir / "best.pt")
    test = evaluate_predictor(best, tasks["meta_test"])
    mae = {split: accuracy_errors(best, tasks[split]) for split in ("meta_valid", "meta_test")}
    metrics = {
        "best_valid_spearman": trainer.best,
        "best_episode": trainer.best_episode,
        "episodes": trainer.episode,
        "meta_valid": evaluate_predictor(best, tasks["meta_valid"]),
        "meta_test": test,
        "meta_test_mean": mean_metrics(test, METRICS + (PARTIAL,)),
        "calibration": best.target["calib"],
        "pred_acc_mae": mae,
        "pred_acc_mae_mean": {k: nanmean(v.values()) for k, v in mae.items()},
        "baselines_meta_test": _baselines(tasks["meta_test"]),
        "train_seconds": round(trainer.seconds, 2),
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics
