"""The database's split and label names: a torch-free leaf read by the build config, the task-file
format and the evaluation config alike, and the one check of a meta split name."""
from ..errors import DassError

META_SPLITS = ("meta_train", "meta_valid", "meta_test")
LABELS = ("best_acc", "final_acc")  # the accuracies a predictor can be trained on or evaluated against


def check_meta_split(split, where: str) -> None:
    """A DassError naming ``where`` (the config key, task or file that holds it) unless ``split`` is
    one of :data:`META_SPLITS`."""
    if split not in META_SPLITS:
        raise DassError(f"{where}: split must be one of {list(META_SPLITS)}, got {split!r}")
