"""DaSS: distillation-aware student search on unseen datasets.

Pipeline (one subpackage or module per stage):
data -> space -> teacher -> database -> predictor -> search -> kd -> evaluation.
"""

__version__ = "0.1.0"
