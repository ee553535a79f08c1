"""The search stage's config (no torch: ``python -m dass.search --help`` and config errors answer
without importing it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..errors import DassError
from ..space.config import LatencyConfig, check_latency_budget

# Largest pool, population or batch: every candidate, its score and costs stay in memory.
MAX_POOL = 10_000_000


@dataclass
class EvolutionConfig:
    population: int = 100  # architectures kept each generation (and the size of the first sample)
    generations: int = 20  # rounds of mutation and selection
    parents: int = 20  # best architectures mutated into children each generation
    p_mutate: float = 0.2  # probability of changing each depth/width choice in a mutation


@dataclass
class BudgetConfig:
    """Most MACs / parameters / latency a student may have (every one given applies; null = no limit).
    One spelling for the search and the pipeline (``budget.macs``, ``budget.params``,
    ``budget.latency_ms``); the evaluation's ``search_kd.budgets`` are fractions as ``budget.macs <= 1``."""

    macs: float | None = None    # most MACs: a value <= 1 is a fraction of the teacher's, > 1 a count
    params: float | None = None  # most parameters: a value <= 1 is a fraction of the teacher's, > 1 a count
    latency_ms: float | None = None  # most latency in ms on this machine (settings: latency.*), predicted, picks re-measured

    def __post_init__(self):
        check_latency_budget(self.latency_ms)

    def check(self) -> None:
        for k in ("macs", "params"):
            v = getattr(self, k)
            if v is not None and not v > 0:
                raise DassError(f"budget.{k} must be > 0 (<= 1: a fraction of the teacher's, > 1: a count; "
                                f"null: no limit), got {v:g}")

    def given(self) -> dict:
        """The limits set, as ``{key: value}``."""
        return {k: v for k, v in (("macs", self.macs), ("params", self.params), ("latency_ms", self.latency_ms))
                if v is not None}


@dataclass
class SearchConfig:
    # Keys outside the run identity (dass.runid): where and how it runs, and the files it holds by
    # content (teacher, predictor, candidates; the dataset's bytes).
    IDENTITY_FREE: ClassVar[tuple[str, ...]] = ("run_dir", "progress", "device", "teacher", "predictor", "candidates",
                                                "data_root", "latency.cache_dir")

    teacher: str = ""  # teacher checkpoint (in the predictor's space)
    predictor: str = ""  # meta-trained predictor checkpoint (best.pt)
    run_dir: str = ""  # output folder: top.json, scores.csv, config.yaml, search.log
    dataset: str | None = None  # dataset name: for input D, or a teacher file without its accuracy
    data_root: str | None = None  # folder of the built-in datasets
    budget: BudgetConfig = field(default_factory=BudgetConfig)  # most MACs, parameters and/or latency of a candidate
    latency: LatencyConfig = field(default_factory=LatencyConfig)  # how latency is measured and predicted here
    strategy: Literal["pool", "evolution"] = "pool"  # pool: score a sample (or candidates); evolution: evolve
    pool_size: int = 10000  # candidates sampled under the budgets (strategy pool)
    candidates: str | None = None  # JSON/.pt file of architectures to score instead of sampling
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)  # settings of strategy evolution
    top_k: int = 5  # best candidates written to top.json
    seed: int = 0  # seed of the sampling and the evolution
    noise_seed: int | None = None  # default: the seed the predictor's database used
    feats_per_class: int = 10      # dataset features (input D): as the database builder samples them
    max_feats: int = 512  # most images sampled for the dataset features
    batch_size: int = 256  # architectures per batch when computing functional maps
    proxy_shortlist: int = 256  # predictors reading zero-cost proxies: best candidates re-scored with them
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    progress: bool = True  # progress bars

    def check(self) -> None:
        for k in ("teacher", "predictor", "run_dir"):
            if not getattr(self, k):
                raise DassError(f"search needs {k}=...")
        for k in ("pool_size", "top_k", "batch_size", "feats_per_class", "max_feats", "proxy_shortlist"):
            if not 1 <= getattr(self, k) <= MAX_POOL:
                raise DassError(f"{k} must lie in [1, {MAX_POOL}], got {getattr(self, k)}")
        if self.evolution.population > MAX_POOL or self.evolution.generations > MAX_POOL:
            raise DassError(f"evolution.population and evolution.generations must be <= {MAX_POOL}")
        self.budget.check()
        e = self.evolution
        if e.population < 1 or e.generations < 0 or not 1 <= e.parents <= e.population or not 0 < e.p_mutate <= 1:
            raise DassError("evolution needs population >= 1, generations >= 0, 1 <= parents <= population, "
                            "0 < p_mutate <= 1")
        if self.candidates and self.strategy != "pool":
            raise DassError("candidates=<file> goes with strategy=pool")
