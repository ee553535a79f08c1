"""The predictor stage: the DaSS meta-predictor (encoders, model, inner-loop adaptation, task data,
metrics, zero-cost proxy inputs) and its meta-training (``python -m dass.predictor``,
:func:`dass.predictor.meta_train.run`). Search (``python -m dass.search``) uses it.

Names are imported lazily (``dass/_lazy.py``): the configs need no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["MetaTrainConfig", "ModelSizes", "PROXY_INPUTS", "check_proxy_names"],
    "adapt": ["adapt", "adapted_params", "init_inner_lrs", "predict", "predict_task"],
    "data": ["TARGETS", "TaskData", "cost_features", "load_tasks", "student_inputs", "student_targets",
             "support_target", "take", "task_context", "to_accuracy"],
    "metrics": ["evaluate_predictor", "task_metrics"],
    "model": ["InputDims", "Predictor", "PredictorConfig", "canonical_input_type"],
    "checkpoint": ["LoadedPredictor", "load_predictor", "save_predictor"],
    "meta_train": ["MetaTrainer", "run", "calibrate", "pairwise_rank_loss"],
})
