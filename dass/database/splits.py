"""The database's split and label names: a torch-free leaf read by the build config, the task-file
format and the evaluation config alike."""

META_SPLITS = ("meta_train", "meta_valid", "meta_test")
LABELS = ("best_acc", "final_acc")  # the accuracies a predictor can be trained on or evaluated against
