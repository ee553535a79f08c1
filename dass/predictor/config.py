"""The predictor's torch-free configuration: layer sizes, the zero-cost proxies it may read, and the
meta-training config (``python -m dass.predictor --help`` and config errors answer without torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..errors import DassError

# Zero-cost proxies a predictor may read as inputs (computed by dass.predictor.proxy_inputs).
PROXY_INPUTS = ("naswot", "synflow", "diswot", "inherit")
# What a user knows of a task that a predictor may read (dass.predictor.data.task_stats): the teacher's
# test accuracy (a fraction) and the log of the class count.
TASK_STATS = ("teacher_acc", "log_classes")


def check_proxy_names(names) -> list[str]:
    """``names`` as a list when they are distinct names of :data:`PROXY_INPUTS`, else a DassError."""
    names = list(names)
    bad = [n for n in names if n not in PROXY_INPUTS]
    if bad or len(set(names)) != len(names):
        raise DassError(f"proxies must be distinct names among {list(PROXY_INPUTS)}, got {names}")
    return names


@dataclass
class ModelSizes:
    map_hidden: int = 128  # hidden channels of the functional-map encoders (S, T)
    map_out: int = 256  # output size of each functional-map encoder
    arch_out: int = 64  # output size of the architecture encoder (A)
    graph_hidden: int = 64  # hidden size of the graph encoder
    graph_layers: int = 2  # layers of the graph encoder
    set_dim: int = 64  # width of the dataset set encoder (D)
    set_out: int = 64  # output size of the dataset set encoder
    set_heads: int = 4  # attention heads of the set encoder
    set_inducing: int = 16  # inducing points of the set encoder
    head_hidden: int = 64  # hidden size of the prediction head

    def __post_init__(self):
        for k, v in vars(self).items():
            if not 1 <= v <= 65536:
                raise DassError(f"model.{k} must lie in [1, 65536], got {v}")
        if self.set_dim % self.set_heads:
            raise DassError(f"model.set_dim {self.set_dim} must be divisible by model.set_heads {self.set_heads}")


@dataclass
class MetaTrainConfig:
    # Keys outside the run identity (dass.runid), which are also the keys a resumed run may change:
    # where it is written and how it shows progress, how far it goes (a resumption may raise
    # episodes), and the inputs held by content (the database's task files; the proxies' cache).
    IDENTITY_FREE: ClassVar[tuple[str, ...]] = ("run_dir", "episodes", "resume", "progress", "device",
                                                "checkpoint_every", "data_root", "proxy_cache", "db",
                                                "proxy_read_only_caches")
    # Keys added after runs existed, with the value at which they change nothing (dass.runid).
    IDENTITY_ADDED: ClassVar[dict] = {"task_stats": [], "prior_interactions": False, "stage_width": "sum"}

    db: str = ""  # database folder (task files)
    run_dir: str = ""  # output folder: best.pt, last.pt, history.csv, metrics.json
    seed: int = 0  # seed of the initialisation and the query sampling
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    label: Literal["best_acc", "final_acc"] = "best_acc"  # student accuracy the predictor learns
    # predictor
    input_type: str = "STA"  # inputs: D (dataset), S (student map), T (teacher map), A (architecture)
    arch_encoder: Literal["onehot", "graph"] = "onehot"  # encoder of input A
    cost_features: bool = False  # add log MACs and log params relative to the teacher's to the head's input
    stage_features: bool = False  # the per-stage depth and width encoding joins the cost scalars (head input and prior)
    stage_width: Literal["sum", "mean"] = "sum"  # that encoding's width per stage: summed over its blocks, or their mean
    cost_prior: bool = False  # output = linear prior on the cost (and proxy) scalars, least squares, + learned residual
    prior_onehot: bool = False  # the cost prior also reads the one-hot encoding (linear: a ridge fit, penalty prior_ridge)
    prior_ridge: float = 10.0  # with prior_onehot or prior_interactions: ridge penalty of the prior's fit (standardised columns)
    prior_model: Literal["linear", "trees"] = "linear"  # the cost prior: least squares / ridge, or boosted trees
    prior_rounds: int = 300  # with prior_model=trees: boosting rounds (learning rate 0.05, 20 students per leaf)
    prior_depth: int = 3  # with prior_model=trees: depth of each tree
    proxies: list[str] = field(default_factory=list)  # zero-cost proxies as inputs: naswot, synflow, diswot, inherit
    task_stats: list[str] = field(default_factory=list)  # task statistics joining the scalars: teacher_acc, log_classes
    prior_interactions: bool = False  # the prior also reads each student scalar times each task statistic (ridge, prior_ridge)
    data_root: str = "data"  # datasets of the tasks (the proxies' image batches)
    proxy_batch_size: int = 32  # images per proxy batch
    proxy_cache: str = ""  # folder caching the database's proxy features; "" = <run_dir>/proxy_cache
    proxy_read_only_caches: list[str] = field(default_factory=list)  # proxy caches only read, after proxy_cache (shipped ones)
    model: ModelSizes = field(default_factory=ModelSizes)  # layer sizes of the predictor
    # objective
    target: Literal["raw", "relative", "standardized"] = "raw"  # accuracy as is, minus the teacher's, or standardised
    rank_loss_weight: float = 0.0  # weight of the pairwise ranking loss added to the MSE
    # bilevel loop
    episodes: int = 1000  # meta-training episodes
    n_query: int = 50  # students per task and episode in the outer loss
    meta_batch: int = 0  # meta-train tasks per episode, drawn without replacement; 0 = every task
    inner_steps: int = 1  # adaptation steps on the teacher (the support set)
    first_order: bool = False  # first-order MAML (no second derivatives)
    inner_lr_init: float = 0.005  # initial inner learning rate of every parameter
    learn_inner_lr: bool = True  # learn the per-parameter inner learning rates
    outer_lr: float = 5e-4  # Adam learning rate of the meta-parameters
    eval_every: int = 20  # episodes between meta-valid evaluations (best.pt = best of them)
    eval_at_start: bool = False  # also validate the untrained model (episode 0, the prior alone) as a candidate
    checkpoint_every: int = 20  # episodes between rewrites of last.pt
    resume: bool = True  # continue from run_dir/last.pt when present
    progress: bool = True  # progress bars

    def check(self) -> None:
        if not self.db:
            raise DassError("meta_train needs db=<database folder>")
        if not self.run_dir:
            raise DassError("meta_train needs run_dir=<output folder>")
        for k in ("episodes", "n_query", "eval_every", "checkpoint_every"):
            if getattr(self, k) < 1:
                raise DassError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.inner_steps < 0:
            raise DassError(f"inner_steps must be >= 0, got {self.inner_steps}")
        if self.meta_batch < 0:
            raise DassError(f"meta_batch must be >= 0 (0 = every meta-train task), got {self.meta_batch}")
        if self.proxies:
            check_proxy_names(self.proxies)
        if any(n not in TASK_STATS for n in self.task_stats) or len(set(self.task_stats)) != len(self.task_stats):
            raise DassError(f"task_stats must be distinct names among {list(TASK_STATS)}, got {self.task_stats}")
        if self.task_stats and not (self.cost_features or self.cost_prior):
            raise DassError("task_stats join the cost scalars: set cost_features or cost_prior")
        if self.outer_lr <= 0 or self.inner_lr_init < 0 or self.rank_loss_weight < 0 or self.prior_ridge < 0:
            raise DassError("outer_lr must be > 0, inner_lr_init, rank_loss_weight and prior_ridge >= 0")
        if self.stage_features and not (self.cost_features or self.cost_prior):
            raise DassError("stage_features extends the cost scalars: set cost_features or cost_prior")
        if self.prior_onehot and not self.cost_prior:
            raise DassError("prior_onehot extends the cost prior: set cost_prior=true")
        if self.prior_model == "trees" and not self.cost_prior:
            raise DassError("prior_model=trees is a kind of cost prior: set cost_prior=true")
        if self.prior_interactions and not (self.cost_prior and self.task_stats):
            raise DassError("prior_interactions multiplies the prior's scalars by the task statistics: set "
                            "cost_prior=true and task_stats")
        if self.prior_rounds < 1 or self.prior_depth < 1:
            raise DassError("prior_rounds and prior_depth must be >= 1")
        for k in ("episodes", "n_query", "inner_steps", "eval_every", "checkpoint_every"):
            if getattr(self, k) > 10_000_000:
                raise DassError(f"{k} must be <= 10^7, got {getattr(self, k)}")
