"""The teacher stage: train a teacher (``python -m dass.teacher``, :func:`run`), its checkpoints
(:mod:`.checkpoint`, the one home of the ``teacher.pt`` layout). What a teacher computes on a task
(its map, the students' maps, dataset features, its accuracy) is :class:`dass.task.Task`'s.

Names are imported lazily (``dass/_lazy.py``): the config needs no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["TeacherRunConfig"],
    "checkpoint": ["teacher_checkpoint", "save_teacher", "load_teacher", "check_teacher_state_dict",
                   "strip_module_prefix"],
    "training_run": ["run"],
})
