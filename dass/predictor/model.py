"""The meta-predictor: which inputs it reads and how it combines them (its checkpoint:
:mod:`dass.predictor.checkpoint`).

``input_type`` is any subset of the letters (order free, stored in the canonical order D, S, T, A):

* ``D``: the task's ``dataset_feats`` rows through the Set Transformer -> ``set_out`` (64);
* ``S``: the student's functional map -> ``map_out`` (256);
* ``T``: the teacher's functional map (separate weights from S) -> ``map_out`` (256);
* ``A``: the architecture, ``onehot`` (linear -> ``arch_out``, 64) or ``graph`` (GIN -> 64).

With ``cost_features`` two scalars are appended: ``log(macs / teacher macs)`` and
``log(params / teacher params)`` (0 for the teacher). The head is ``linear(concat -> head_hidden)
-> tanh -> linear(head_hidden -> 1)``: 576 -> 64 -> 1 for the paper's STA.

With ``stage_features`` the stage encoding (``stage: N x 2S``, per-stage depth and summed width
relative to the maximum, or with ``stage_width: mean`` the mean block width relative to the stage's,
:mod:`dass.space.encodings`) follows the two cost scalars.
With ``proxies`` (e.g. ``[naswot, synflow]``) the cost scalars are followed by the students'
zero-cost proxy features relative to the teacher (``proxy: N x P``, :mod:`dass.predictor.proxy_inputs`).
With ``task_stats`` (e.g. ``[teacher_acc]``) the task's statistics follow, the same in every row
(``task``: one value per name of :data:`~dass.predictor.config.TASK_STATS`, the model reads the
named ones): with the tree prior, the ranking of the students may then change with the teacher's
strength.

With ``cost_prior`` the output is ``prior(scalars) + head(...)``: ``prior`` a linear map of the
cost (and proxy) scalars, initialised (by meta-training) to the least-squares fit of the targets on the cost
over the meta-training students, and the head's last layer initialised to zero, so the untrained
predictor ranks by cost and meta-training learns a residual on top of it. With ``prior_onehot`` the
prior also reads the architecture's one-hot encoding (``[scalars, onehot]``), fitted as a ridge
regression (meta-training's ``prior_ridge``): a linear ranker of architectures learned over all
meta-training students, which the task-conditioned head then corrects. With ``prior_model: trees``
the prior is gradient-boosted trees over the same inputs (:class:`TreePrior`, fitted by
meta-training with :class:`dass.predictor.boosting.BoostedTrees`; fixed afterwards: buffers, not
parameters, so only the residual head is meta-trained and adapted).

Inputs are a dict (built by :func:`dass.predictor.data.student_inputs` and ``task_context``):
``smap: N x C x r x r``, ``tmap: C x r x r`` (one per task, shared by the N rows), ``onehot: N x D``,
``graph: {x, adj, mask}``, ``cost: N x 2``, ``dset: M x C``. Only the keys the input type needs are
read. The output is ``N`` predicted targets (see :mod:`dass.predictor.data` for the target scales).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import DassError
from ..space import SpaceConfig, onehot_dim, stage_dim
from ..space.encodings import STAGE_WIDTHS
from ..space.encodings import graph_feature_dim
from .config import TASK_STATS, ModelSizes
from .encoders import GraphEncoder, MapEncoder, OnehotEncoder
from .set_encoder import SetEncoder

CKPT_FORMAT = "dass-predictor-v1"
INPUT_LETTERS = "DSTA"
ARCH_ENCODERS = ("onehot", "graph")


def canonical_input_type(input_type: str) -> str:
    """Validate ``input_type`` (a non-empty subset of D, S, T, A) and return it as ordered DSTA."""
    letters = str(input_type).upper()
    bad = sorted(set(letters) - set(INPUT_LETTERS))
    if not letters or bad or len(set(letters)) != len(letters):
        raise DassError(f"input_type must be a non-empty subset of the letters {INPUT_LETTERS} without "
                        f"repeats (e.g. STA, DSTA, A), got {input_type!r}")
    return "".join(c for c in INPUT_LETTERS if c in letters)


@dataclass
class InputDims:
    """Sizes fixed by the student space: map channels (= dataset feature width), encodings."""
    map_channels: int
    onehot_dim: int
    graph_node_dim: int
    stage_dim: int = 0

    @classmethod
    def for_space(cls, space: SpaceConfig) -> "InputDims":
        return cls(space.stage_widths[-1], onehot_dim(space), graph_feature_dim(space), stage_dim(space))


PRIOR_MODELS = ("linear", "trees")


class TreePrior(nn.Module):
    """Boosted regression trees as a torch module (prediction only): ``R`` complete binary trees of
    depth ``d`` stored as buffers, in the layout of :class:`dass.predictor.boosting.BoostedTrees`
    (inner node ``i`` sends a row right when ``x[feature] > threshold``, children ``2i+1``/``2i+2``).
    Comparisons are made in float64, as the fit made them."""

    def __init__(self, rounds: int, depth: int):
        super().__init__()
        self.depth = int(depth)
        inner = 2 ** self.depth - 1
        self.register_buffer("features", torch.zeros(rounds, inner, dtype=torch.long))
        self.register_buffer("thresholds", torch.full((rounds, inner), float("inf"), dtype=torch.float64))
        self.register_buffer("leaves", torch.zeros(rounds, inner + 1, dtype=torch.float64))
        self.register_buffer("base", torch.zeros((), dtype=torch.float64))

    def set_trees(self, trees) -> None:
        """Copy a fitted :class:`BoostedTrees` (same rounds and depth) into the buffers."""
        if trees.features.shape != tuple(self.features.shape) or trees.max_depth != self.depth:
            raise DassError(f"tree prior: fitted trees {trees.features.shape} (depth {trees.max_depth}) do not "
                            f"fit the module's {tuple(self.features.shape)} (depth {self.depth})")
        with torch.no_grad():
            self.features.copy_(torch.as_tensor(trees.features))
            self.thresholds.copy_(torch.as_tensor(trees.thresholds))
            self.leaves.copy_(torch.as_tensor(trees.leaves))
            self.base.fill_(float(trees.base))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        rounds, inner = self.features.shape
        r = torch.arange(rounds, device=x.device)[None].expand(x.shape[0], -1)
        node = torch.zeros(x.shape[0], rounds, dtype=torch.long, device=x.device)
        for _ in range(self.depth):
            feat, thr = self.features[r, node], self.thresholds[r, node]
            node = 2 * node + 1 + (x.gather(1, feat) > thr).long()
        out = self.leaves[r, node - inner].sum(dim=1) + self.base
        return out.float()[:, None]


@dataclass
class PredictorConfig:
    dims: InputDims
    input_type: str = "STA"
    arch_encoder: str = "onehot"
    cost_features: bool = False
    sizes: ModelSizes = field(default_factory=ModelSizes)
    cost_prior: bool = False
    proxies: list[str] = field(default_factory=list)
    prior_onehot: bool = False
    stage_features: bool = False
    prior_model: str = "linear"      # "linear" or "trees" (TreePrior)
    prior_rounds: int = 300          # with trees: boosting rounds
    prior_depth: int = 3             # with trees: depth of every tree
    task_stats: list[str] = field(default_factory=list)  # names of TASK_STATS joining the scalars
    prior_interactions: bool = False  # the prior also reads every student scalar times every task statistic
    stage_width: str = "sum"          # with stage_features: the stage encoding's widths, summed or mean

    def __post_init__(self):
        if self.prior_model not in PRIOR_MODELS:
            raise DassError(f"prior_model must be one of {list(PRIOR_MODELS)}, got {self.prior_model!r}")
        if self.prior_model == "trees" and not self.cost_prior:
            raise DassError("prior_model=trees is a kind of cost prior: set cost_prior")
        if self.prior_rounds < 1 or self.prior_depth < 1:
            raise DassError("prior_rounds and prior_depth must be >= 1")
        if self.stage_features and not (self.cost_features or self.cost_prior):
            raise DassError("stage_features extends the cost scalars: set cost_features or cost_prior")
        if self.prior_onehot and not self.cost_prior:
            raise DassError("prior_onehot extends the cost prior: set cost_prior")
        if self.proxies and not (self.cost_features or self.cost_prior):
            raise DassError("proxies are read with the cost scalars: set cost_features or cost_prior")
        if any(n not in TASK_STATS for n in self.task_stats) or len(set(self.task_stats)) != len(self.task_stats):
            raise DassError(f"task_stats must be distinct names among {list(TASK_STATS)}, got {self.task_stats}")
        if self.task_stats and not (self.cost_features or self.cost_prior):
            raise DassError("task_stats join the cost scalars: set cost_features or cost_prior")
        if self.stage_width not in STAGE_WIDTHS:
            raise DassError(f"stage_width must be one of {list(STAGE_WIDTHS)}, got {self.stage_width!r}")
        if self.prior_interactions and not (self.cost_prior and self.task_stats):
            raise DassError("prior_interactions multiplies the prior's scalars by the task statistics: set cost_prior "
                            "and task_stats")
        self.input_type = canonical_input_type(self.input_type)
        if self.arch_encoder not in ARCH_ENCODERS:
            raise DassError(f"arch_encoder must be one of {list(ARCH_ENCODERS)}, got {self.arch_encoder!r}")


class Predictor(nn.Module):
    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.cfg = cfg
        z, d, it = cfg.sizes, cfg.dims, cfg.input_type
        width = 0
        if "D" in it:
            self.dset_enc = SetEncoder(d.map_channels, z.set_dim, z.set_out, z.set_heads, z.set_inducing)
            width += z.set_out
        if "S" in it:
            self.smap_enc = MapEncoder(d.map_channels, z.map_hidden, z.map_out)
            width += z.map_out
        if "T" in it:
            self.tmap_enc = MapEncoder(d.map_channels, z.map_hidden, z.map_out)
            width += z.map_out
        if "A" in it:
            if cfg.arch_encoder == "onehot":
                self.arch_enc = OnehotEncoder(d.onehot_dim, z.arch_out)
            else:
                self.arch_enc = GraphEncoder(d.graph_node_dim, z.graph_hidden, z.arch_out, z.graph_layers)
            width += z.arch_out
        n_scalars = 2 + (d.stage_dim if cfg.stage_features else 0) + len(cfg.proxies) + len(cfg.task_stats)
        if cfg.cost_features:
            width += n_scalars
        self.hidden = nn.Linear(width, z.head_hidden)
        self.out = nn.Linear(z.head_hidden, 1)
        if cfg.cost_prior:
            n_student = n_scalars - len(cfg.task_stats)
            n_prior = (n_scalars + (n_student * len(cfg.task_stats) if cfg.prior_interactions else 0)
                       + (d.onehot_dim if cfg.prior_onehot else 0))
            self.prior = (TreePrior(cfg.prior_rounds, cfg.prior_depth) if cfg.prior_model == "trees"
                          else nn.Linear(n_prior, 1))

    @property
    def needs(self) -> set[str]:
        """Input keys read by :meth:`forward`."""
        it = self.cfg.input_type
        keys = {"D": "dset", "S": "smap", "T": "tmap"}
        out = {keys[c] for c in it if c in keys}
        if "A" in it:
            out.add(self.cfg.arch_encoder)
        if self.cfg.cost_features or self.cfg.cost_prior:
            out.add("cost")
        if self.cfg.proxies:
            out.add("proxy")
        if self.cfg.stage_features:
            out.add(stage_need(self.cfg.stage_width))
        if self.cfg.prior_onehot:
            out.add("onehot")
        if self.cfg.task_stats:
            out.add("task")
        return out

    def set_output_bias(self, value: float) -> None:
        with torch.no_grad():
            self.out.bias.fill_(float(value))

    def set_prior(self, weight, bias: float) -> None:
        """Prior ``weight . prior_inputs + bias``; the residual head starts at 0 (see module doc)."""
        with torch.no_grad():
            self.prior.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).reshape(1, -1))
            self.prior.bias.fill_(float(bias))
        self._zero_head()

    def set_tree_prior(self, trees) -> None:
        """The tree prior (``prior_model: trees``) from a fitted :class:`BoostedTrees`; the residual
        head starts at 0."""
        self.prior.set_trees(trees)
        self._zero_head()

    def _zero_head(self) -> None:
        """The residual head's output layer at 0, so the untrained predictor is its prior."""
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, inputs: dict) -> torch.Tensor:
        n = _rows(inputs)
        parts = []
        it = self.cfg.input_type
        if "D" in it:
            parts.append(self.dset_enc(inputs["dset"]).expand(n, -1))
        if "S" in it:
            parts.append(self.smap_enc(inputs["smap"]))
        if "T" in it:
            parts.append(self.tmap_enc(inputs["tmap"][None]).expand(n, -1))
        if "A" in it:
            parts.append(self.arch_enc(inputs[self.cfg.arch_encoder]))
        scalars = scalar_inputs(inputs, self.cfg.stage_features, bool(self.cfg.proxies), self.cfg.task_stats)
        if self.cfg.cost_features:
            parts.append(scalars)
        h = torch.tanh(self.hidden(torch.cat(parts, dim=1)))
        y = self.out(h)[:, 0]
        if self.cfg.cost_prior:
            y = y + self.prior(prior_inputs(inputs, self.cfg, scalars))[:, 0]
        return y


def stage_need(width: str) -> str:
    """The input key that asks :func:`dass.predictor.data.student_inputs` for the stage encoding with
    ``width`` (``stage_width``); either way the rows arrive as ``stage``."""
    return "stage" if width == "sum" else "stage_mean"


def prior_inputs(inputs: dict, cfg, scalars: torch.Tensor | None = None) -> torch.Tensor:
    """The prior's input rows: the scalars (:func:`scalar_inputs`), with ``prior_interactions`` each
    student scalar (cost, stage, proxy) times each task statistic (``n_student x n_stats`` columns,
    student-major), then the one-hot encoding with ``prior_onehot``. ``cfg`` is a
    :class:`PredictorConfig` or the meta-training config (the same field names)."""
    if scalars is None:
        scalars = scalar_inputs(inputs, cfg.stage_features, bool(cfg.proxies), cfg.task_stats)
    parts = [scalars]
    if cfg.prior_interactions:
        k = len(cfg.task_stats)
        student, stats = scalars[:, :-k], scalars[:, -k:]
        parts.append((student[:, :, None] * stats[:, None, :]).reshape(len(scalars), -1))
    if cfg.prior_onehot:
        parts.append(inputs["onehot"])
    return torch.cat(parts, dim=1) if len(parts) > 1 else scalars


def scalar_inputs(inputs: dict, stage: bool, proxies: bool, task_stats=()) -> torch.Tensor | None:
    """The scalars the head (``cost_features``) and the prior read: ``cost``, then ``stage``,
    ``proxy`` and the named ``task_stats`` (columns of ``task``, repeated in every row) where the
    predictor reads them (``None`` without ``cost``)."""
    if "cost" not in inputs:
        return None
    parts = [inputs["cost"]] + ([inputs["stage"]] if stage else []) + ([inputs["proxy"]] if proxies else [])
    if task_stats:
        cols = inputs["task"][[TASK_STATS.index(n) for n in task_stats]]
        parts.append(cols.to(inputs["cost"].dtype)[None].expand(inputs["cost"].shape[0], -1))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def _rows(inputs: dict) -> int:
    for k in ("smap", "onehot", "cost"):
        if k in inputs:
            return inputs[k].shape[0]
    if "graph" in inputs:
        return inputs["graph"]["x"].shape[0]
    raise DassError("predictor inputs hold no per-student tensor (smap, onehot, graph or cost)")
