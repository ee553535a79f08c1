"""Training: recipes, losses, the shared training loop (teachers and KD), lockstep multi-student KD,
the teacher-logit cache and the DistributedDataParallel helpers.

Names are imported lazily (``dass/_lazy.py``): the recipes need no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "recipe": ["Recipe", "KDRecipe", "TeacherRecipe"],
    "losses": ["kd_loss", "soft_cross_entropy", "smoothed_cross_entropy"],
    "trainer": ["Learner", "Keeping", "fit", "top1_accuracies", "fit_teacher"],
    "kd_setting": ["KDSetting"],
    "lockstep": ["kd_train", "kd_train_many"],
    "distributed": ["DistContext", "init_distributed", "single_process"],
})
