"""Your own dataset in one command: teacher -> search -> KD -> report (``python -m dass.pipeline``,
:func:`run`; the stages and their resumption are described in :mod:`dass.pipeline.runner`).

Names are imported lazily (``dass/_lazy.py``): the config needs no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["PipelineConfig"],
    "runner": ["run", "predictor_file", "default_run_dir"],
})
