"""The search stage: adapt the meta-trained predictor on a new task's teacher and pick students under
MACs/parameter budgets (``python -m dass.search``, :func:`run`).

Names are imported lazily (``dass/_lazy.py``): the config needs no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["SearchConfig", "EvolutionConfig", "MAX_POOL"],
    "budget": ["Budget", "smallest_arch"],
    "searcher": ["run", "AdaptedScorer", "Candidates", "read_candidates", "shortlist_rescore"],
    "strategies": ["sample_pool", "evolve", "strategy_names", "run_strategy", "register"],
})
