"""Evaluation of student rankers on meta-test tasks: correlations (``correlation``), zero-cost
proxies (``proxies``), the registry of scorers (``baselines``), search-then-KD (``search_kd``),
markdown tables (``tables``) and PNG plots (``plots``). The entry is ``python -m dass.evaluate``."""
from .baselines import EvalContext, PredictorScorer, Scorer, builtin_scorers, make_scorer, run_scorer
from ..correlation import correlations, nanmean, regret, top1_index, top_k_overlap

__all__ = ["EvalContext", "Scorer", "PredictorScorer", "builtin_scorers", "make_scorer", "run_scorer",
           "correlations", "nanmean", "regret", "top1_index", "top_k_overlap"]
