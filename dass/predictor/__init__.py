"""The DaSS meta-predictor: encoders, model, inner-loop adaptation, task data, metrics.

Entry points using it: ``python -m dass.meta_train`` (meta-training) and ``python -m dass.search``.
"""
from .adapt import adapt, adapted_params, init_inner_lrs, predict, predict_task
from .data import (TARGETS, TaskData, cost_features, load_tasks, student_inputs, student_targets,
                   support_target, take, task_context, to_accuracy)
from .metrics import correlations, evaluate_predictor, mean_metrics, task_metrics
from .model import (InputDims, LoadedPredictor, ModelSizes, Predictor, PredictorConfig, canonical_input_type,
                    load_predictor, save_predictor)

__all__ = [
    "adapt", "adapted_params", "init_inner_lrs", "predict", "predict_task",
    "TARGETS", "TaskData", "cost_features", "load_tasks", "student_inputs", "student_targets", "support_target",
    "take", "task_context", "to_accuracy",
    "correlations", "evaluate_predictor", "mean_metrics", "task_metrics",
    "InputDims", "LoadedPredictor", "ModelSizes", "Predictor", "PredictorConfig", "canonical_input_type",
    "load_predictor", "save_predictor",
]
