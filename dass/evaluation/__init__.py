"""The evaluation stage: rank the students of meta-test tasks with baselines and predictors and compare
with their true KD accuracies (``python -m dass.evaluation``, :func:`run`). Zero-cost proxies
(``proxies``), the scorer interface and registry (``baselines``), the proxy ensemble (``ensemble``),
search-then-KD (``search_kd``), markdown tables (``tables``), PNG plots (``plots``); the correlation
metrics are :mod:`dass.correlation`.

Names are imported lazily (``dass/_lazy.py``): the config needs no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["EvaluationConfig", "ProxyConfig", "SearchKDConfig", "BUILTIN_METHODS"],
    "baselines": ["EvalContext", "Scorer", "PredictorScorer", "builtin_scorers", "make_scorer", "run_scorer"],
    "evaluate_tasks": ["run", "prepare", "run_plan", "Plan"],
})
