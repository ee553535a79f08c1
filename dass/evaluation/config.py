"""The evaluation stage's config (no torch: ``python -m dass.evaluation --help`` and config errors answer
without importing it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..database.splits import LABELS, check_meta_split
from ..errors import DassError

# The built-in methods, in table order: the scorers :mod:`dass.evaluation.baselines` registers
# (``builtin_scorers()``; tests/evaluation/test_evaluation.py checks that the two agree).
BUILTIN_METHODS = ("random", "macs", "params", "grad_norm", "snip", "synflow", "naswot", "jacov", "inherit",
                   "diswot", "encoding_ridge", "proxy_ensemble", "oracle")


@dataclass
class ProxyConfig:
    input: Literal["data", "noise"] = "data"   # "data": train images of the task's dataset (noise when unreadable)
    batch_size: int = 64  # images per zero-cost proxy evaluation
    cache: str = ""  # folder of computed proxy scores, reused when students, teacher and batch match; "" = none
    read_only_caches: list[str] = field(default_factory=list)  # more such folders, looked up after cache, never written


@dataclass
class SearchKDConfig:
    enabled: bool = False  # also compare the methods' top-1 picks under MACs budgets
    budgets: list[float] = field(default_factory=lambda: [0.25, 0.5])   # fractions of the teacher's MACs
    train: bool = False          # KD-train each pick with every seed (else database accuracies only)
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])  # KD seeds of each trained pick
    kd_recipe: str = ""          # KD recipe YAML; empty = the recipe stored in each task file
    methods: list[str] = field(default_factory=list)   # empty = every evaluated method

    def __post_init__(self):
        if not self.budgets or any(not 0 < b <= 1 for b in self.budgets):
            raise DassError("search_kd.budgets must be fractions of the teacher's MACs in (0, 1]")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise DassError("search_kd.seeds must be a non-empty list of distinct seeds")


@dataclass
class EvaluationConfig:
    # Keys outside the run identity (dass.runid): where it writes and how it shows progress (plots
    # included), and the files it holds by content (database task files, predictors, teacher overrides)
    # or only caches (the proxies' score caches).
    IDENTITY_FREE: ClassVar[tuple[str, ...]] = ("run_dir", "progress", "device", "plots", "db", "train_db",
                                                "predictors", "teachers", "proxy.cache", "proxy.read_only_caches")

    db: str = ""  # database folder (task files)
    train_db: str = ""  # database whose meta_train/meta_valid tasks fit the proxy ensemble; "" = db
    data_root: str = "data"  # folder of the datasets (proxies read images; else noise)
    run_dir: str = ""  # output folder; default runs/evaluate/<split>-<identity hash> (dass.runid)
    split: str = "meta_test"  # split whose tasks are evaluated
    tasks: list[str] = field(default_factory=list)        # task keys; empty = every task of the split
    groups: dict[str, list[str]] = field(default_factory=dict)  # task groups (e.g. regimes): name -> task keys; tables add each group's mean and 90 % interval
    methods: list[str] = field(default_factory=lambda: list(BUILTIN_METHODS))  # baselines to run (random, macs ...)
    predictors: dict[str, str] = field(default_factory=dict)   # method name -> predictor checkpoint
    teachers: dict[str, str] = field(default_factory=dict)     # task key -> teacher checkpoint override
    labels: list[str] = field(default_factory=lambda: ["best_acc"])   # the first is the oracle's
    top_k: int = 5  # k of the top-k overlap metric
    seed: int = 0  # seed of the random baseline and the proxies' batches
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    plots: bool = True  # write the PNG plots
    progress: bool = True  # progress bars
    proxy: ProxyConfig = field(default_factory=ProxyConfig)  # inputs of the zero-cost proxies
    search_kd: SearchKDConfig = field(default_factory=SearchKDConfig)  # search-then-KD comparison under budgets

    def __post_init__(self):
        check_meta_split(self.split, "evaluation config")
        if not self.labels or len(set(self.labels)) != len(self.labels) or set(self.labels) - set(LABELS):
            raise DassError(f"labels must be distinct names among {list(LABELS)}, got {self.labels}")
        if self.top_k < 1:
            raise DassError("top_k must be >= 1")
        if len(set(self.methods)) != len(self.methods):
            raise DassError("methods: a method is listed twice")
        for name, members in self.groups.items():
            if not name or ":" in name or not members or len(set(members)) != len(members):
                raise DassError(f"groups: '{name}' must be a name without ':' with a non-empty list of distinct task keys")

    def check(self) -> None:
        """The check that needs no file: a database folder is named."""
        if not self.db:
            raise DassError("give the database folder: db=<folder>")
