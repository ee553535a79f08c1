"""DaSS: distillation-aware student search on unseen datasets.

Pipeline (one subpackage or module per stage):
data -> space -> teacher -> database -> predictor -> search -> kd -> evaluation.

From Python: ``from dass import find_student`` (:mod:`dass.api`), imported lazily (``dass/_lazy.py``):
``import dass`` and the stages' ``--help`` stay free of torch.
"""
from ._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {"api": ["find_student", "Pick", "Arrays"]})
