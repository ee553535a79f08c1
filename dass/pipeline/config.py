"""The pipeline's config (no torch: ``python -m dass.pipeline --help`` and config errors answer without
importing it; the remap name is checked by :func:`dass.pipeline.runner.run`, which knows the strategies)."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Literal

from ..errors import DassError
from ..export.config import FORMATS as EXPORT_FORMATS
from ..search.config import BudgetConfig, EvolutionConfig, SearchConfig
from ..space.config import LatencyConfig

MAX_PICKS = 100  # most candidates KD-trained by one run (top_k)
from ..train.recipe import KDRecipe, TeacherRecipe


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it: config checks stay light)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass
class PipelineConfig:
    dataset: str = ""             # folder:<path>, npy:<path> or a built-in name (glyphs/hebrew)
    data_root: str = "data"       # folder of the built-in datasets (not used by folder: and npy:)
    teacher: str = ""             # teacher checkpoint; empty = train one here with teacher_recipe
    predictor: str = "assets/cpu/predictors/dass"   # meta-trained predictor: best.pt or its run folder
    run_dir: str = ""             # report folder; default runs/pipeline/<dataset>
    budget: BudgetConfig = field(default_factory=BudgetConfig)  # student budget (MACs, parameters and/or latency)
    latency: LatencyConfig = field(default_factory=LatencyConfig)  # how latency is measured and predicted here
    top_k: int = 3                # candidates KD-trained, the best by predicted score
    seeds: list[int] = field(default_factory=lambda: [1])   # KD seeds of every pick
    strategy: Literal["pool", "evolution"] = "pool"   # search: a sampled pool, or evolution
    pool_size: int = 10000        # candidates sampled under the budget (strategy pool)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)  # search settings of strategy evolution
    search_seed: int = 0          # seed of the candidate sampling
    teacher_seed: int = 0         # seed of the teacher trained here
    teacher_recipe: TeacherRecipe = field(default_factory=TeacherRecipe)  # recipe of a teacher trained here
    kd_recipe: KDRecipe = field(default_factory=KDRecipe)  # KD recipe of the picks
    scratch_baseline: bool = False  # also train each pick from scratch (random init, labels only, same steps) for the report
    remap: str = "copy_paste_first"   # how a student's initial weights are taken from the teacher
    device: str = "auto"          # auto, cpu, cuda or cuda:<i>
    threads: int = 0              # torch CPU threads; 0 = torch's default
    progress: bool = True         # progress bars
    train: bool = True            # false: stop after the search (the top_k picks in search/top.json; no KD, export or report)
    export: list[str] = field(default_factory=lambda: list(EXPORT_FORMATS))  # formats of the rank-1 pick in <run_dir>/export (torchscript, onnx, state_dict); [] = none

    def check(self) -> None:
        if not self.dataset:
            raise DassError("no dataset given (dataset=folder:<path>, npy:<path> or e.g. glyphs/hebrew)")
        bad = [f for f in self.export if f not in EXPORT_FORMATS]
        if bad or len(set(self.export)) != len(self.export):
            raise DassError(f"export: unknown or repeated format in {self.export} (known: {', '.join(EXPORT_FORMATS)})")
        missing = [m for m in ("onnx", "onnxruntime") if "onnx" in self.export and self.train and not _installed(m)]
        if missing:  # said before any training, not after it
            raise DassError(f"export lists onnx, which needs the package(s) {' and '.join(missing)} (pip install -e "
                            f"'.[export]'); or export only the others: export=[torchscript,state_dict]")
        if not self.budget.given():
            raise DassError("no budget given (budget.macs=<fraction of the teacher's or count>, "
                            "budget.params=... and/or budget.latency_ms=<milliseconds>)")
        self.budget.check()
        # the search's own bounds (pool_size, top_k, evolution.*), checked before the teacher trains
        SearchConfig(teacher="-", predictor="-", run_dir="-", strategy=self.strategy, pool_size=self.pool_size,
                     evolution=self.evolution, top_k=self.top_k, seed=self.search_seed).check()
        most = self.pool_size if self.strategy == "pool" else self.evolution.population
        if not 1 <= self.top_k <= min(MAX_PICKS, most):
            raise DassError(f"top_k={self.top_k}: every pick is KD-trained; give at most {min(MAX_PICKS, most)} "
                            f"(and at most the {'pool_size' if self.strategy == 'pool' else 'evolution.population'})")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise DassError("seeds must be a non-empty list of distinct seeds")
        if not 0 <= self.threads <= 1024:
            raise DassError("threads must lie in [0, 1024]")
