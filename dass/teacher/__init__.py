"""The teacher stage: train a teacher (``python -m dass.teacher``, :func:`run`), its checkpoints
(:mod:`.checkpoint`, the one home of the ``teacher.pt`` layout) and what a teacher computes for the
predictor on a task (:mod:`.inputs`: its functional map, the candidates' maps, dataset features, its
accuracy; used by the database builder and by search alike).

Names are imported lazily (``dass/_lazy.py``): the config needs no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["TeacherRunConfig"],
    "checkpoint": ["teacher_checkpoint", "save_teacher", "load_teacher", "check_teacher_state_dict",
                   "strip_module_prefix"],
    "inputs": ["candidate_maps", "teacher_map", "balanced_sample", "dataset_features", "teacher_accuracy"],
    "stage": ["run"],
})
