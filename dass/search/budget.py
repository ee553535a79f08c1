"""The search's budgets: MACs and parameters (exact, by formula) and latency (predicted by the space's
latency model, :mod:`dass.space.latency`; the picks re-measured, :func:`measured_picks`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from ..errors import DassError
from ..space import Arch, SpaceConfig, macs, macs_params, params, teacher_arch
from ..space.config import LatencyConfig
from ..space.latency import LatencyModel, latency_model

log = logging.getLogger("dass.search")
# Most candidates re-measured beyond top_k while replacing picks over the latency budget.
MAX_EXTRA_MEASURED = 50


def smallest_arch(space: SpaceConfig) -> Arch:
    """Minimum depth and width everywhere: the architecture with the fewest MACs and parameters."""
    d = min(space.depths)
    return Arch(tuple(d for _ in space.stage_widths), tuple((c[0],) * d for c in space.width_choices))


def resolve_limits(cfg, teacher_macs: int, teacher_params: int) -> dict:
    """Absolute limits ``{max_macs, max_params[, max_latency_ms]}`` of a :class:`dass.search.config.
    BudgetConfig`: ``macs`` and ``params`` values <= 1 are fractions of the teacher's, larger ones counts."""
    def one(v, of):
        return None if v is None else (float(v) * of if v <= 1 else float(v))
    out = {"max_macs": one(cfg.macs, teacher_macs), "max_params": one(cfg.params, teacher_params)}
    return out if cfg.latency_ms is None else {**out, "max_latency_ms": float(cfg.latency_ms)}


def feasible_budget(cfg, space: SpaceConfig, num_classes: int, latency: LatencyConfig) -> "Budget":
    """The :class:`Budget` of the :class:`dass.search.config.BudgetConfig` ``cfg`` for students of
    ``space`` with ``num_classes`` classes (fractions taken of the space's teacher), checked to admit
    the smallest architecture; the DassError names the keys given (``budget.macs=0.01: ...``)."""
    limits = resolve_limits(cfg, *macs_params(teacher_arch(space), space, num_classes))
    try:
        budget = Budget.of(space, num_classes, limits, latency)   # a latency table is measured here if missing
        budget.check_feasible()
    except DassError as e:
        given = ", ".join(f"budget.{k}={v:g}" for k, v in cfg.given().items())
        raise DassError(f"{given}: {e}") from None
    return budget


@dataclass
class Budget:
    space: SpaceConfig
    num_classes: int
    max_macs: float | None = None
    max_params: float | None = None
    max_latency_ms: float | None = None
    latency: LatencyModel | None = None   # predicts the latency; needed with max_latency_ms
    _costs: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.max_latency_ms is not None and self.latency is None:
            raise ValueError("a latency budget needs a latency model")

    @classmethod
    def of(cls, space: SpaceConfig, num_classes: int, limits: dict, latency: LatencyConfig) -> "Budget":
        """The budget of ``limits`` (``max_macs``, ``max_params``, ``max_latency_ms``, each optional);
        with a latency limit the space's latency model is read from its cache or measured."""
        ms = limits.get("max_latency_ms")
        return cls(space, num_classes, limits.get("max_macs"), limits.get("max_params"), ms,
                   None if ms is None else latency_model(space, num_classes, latency))

    def cost(self, arch: Arch) -> tuple[int, int]:
        """``(MACs, parameters)`` of ``arch`` (memoised: search asks for the same ones repeatedly)."""
        if arch not in self._costs:
            self._costs[arch] = macs_params(arch, self.space, self.num_classes)
        return self._costs[arch]

    def check_feasible(self) -> None:
        """DassError when no architecture of the space meets the budgets."""
        a = smallest_arch(self.space)
        for what, limit, fn in (("MACs", self.max_macs, macs), ("parameters", self.max_params, params)):
            least = fn(a, self.space, self.num_classes)
            if limit is not None and limit < least:
                raise DassError(f"at most {limit:g} {what}, below the smallest architecture of space "
                                f"'{self.space.name}' ({least} {what} with {self.num_classes} classes): no student fits")
        if self.max_latency_ms is not None and self.latency.predict_ms(a) > self.max_latency_ms:
            raise DassError(f"budget.latency_ms={self.max_latency_ms:g} is below the predicted latency of the smallest "
                            f"architecture of space '{self.space.name}' ({self.latency.predict_ms(a):.3f} ms; "
                            f"{self.latency.setting}): no student fits")

    def accepts(self, arch: Arch) -> bool:
        if self.max_latency_ms is not None and self.latency.predict_ms(arch) > self.max_latency_ms:
            return False
        if self.max_macs is None and self.max_params is None:
            return True
        m, p = self.cost(arch)
        return (self.max_macs is None or m <= self.max_macs) and (self.max_params is None or p <= self.max_params)

    def as_dict(self) -> dict:
        out = {"max_macs": self.max_macs, "max_params": self.max_params}
        return out if self.max_latency_ms is None else {**out, "max_latency_ms": self.max_latency_ms}


def measured_picks(ranked: list[Arch], k: int, measure: Callable[[Arch], float], limit_ms: float,
                   tolerance: float) -> tuple[list[int], dict[int, float]]:
    """Walk ``ranked`` (best first), measuring each: keep those measured within ``limit_ms x (1 +
    tolerance)`` until ``k`` are kept, so that a pick over budget is replaced by the next candidate.
    Returns the kept positions and every measured latency by position. At most ``k`` +
    :data:`MAX_EXTRA_MEASURED` candidates are measured; none kept is a DassError."""
    kept, measured = [], {}
    most = min(len(ranked), k + MAX_EXTRA_MEASURED)
    for i in range(most):
        if len(kept) == k:
            break
        measured[i] = float(measure(ranked[i]))
        if measured[i] <= limit_ms * (1 + tolerance):
            kept.append(i)
        else:
            log.info("candidate of rank %d measured %.3f ms, over budget.latency_ms=%g (tolerance %g): replaced by "
                     "the next", i + 1, measured[i], limit_ms, tolerance)
    if not kept:
        raise DassError(f"none of the {len(measured)} best candidates runs within budget.latency_ms={limit_ms:g} "
                        f"(+{100 * tolerance:g} % tolerance) when measured: the latency model is off on this machine "
                        f"now (a load change?); raise the budget or latency.tolerance")
    if len(kept) < k:
        log.warning("only %d of the %d best candidates measured within the latency budget", len(kept), k)
    return kept, measured
