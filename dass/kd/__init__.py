"""The KD stage: distil one student from a teacher, for one or several seeds (``python -m dass.kd``,
:func:`run`). The training loop itself is the library :mod:`dass.train` (shared with teachers and the
database build).

Names are imported lazily (``dass/_lazy.py``): the config needs no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["KDRunConfig", "StudentSpec"],
    "distil_student": ["run", "resolve_student"],
    "picks": ["PickSetting", "kd_picks", "train_pick_folders", "pick_dir", "write_results", "CSV_FIELDS"],
})
