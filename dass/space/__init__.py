"""The OFA-style ResNet student space: architectures, costs, networks, encodings, remapping,
functional embedding. See each module's docstring for the conventions it fixes.

Names are imported lazily (``dass/_lazy.py``): ``Arch``, ``SpaceConfig`` or ``macs`` need numpy
only; the networks, encodings and maps import torch on first use."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "arch": ["Arch", "mutate", "neighbours", "num_architectures", "sample", "sample_unique", "teacher_arch",
             "validate"],
    "config": ["SpaceConfig", "load_space", "SPACE_FIELDS", "same_space", "space_difference", "LatencyConfig",
               "check_latency_budget"],
    "cost": ["macs", "macs_params", "params"],
    "embed": ["MapRun", "functional_map_single", "functional_maps", "masked_stages", "noise_input"],
    "encodings": ["decode_graph", "decode_onehot", "graph", "graph_batch", "onehot", "onehot_batch", "onehot_dim",
                  "stage", "stage_batch", "stage_dim"],
    "latency": ["LatencyModel", "latency_model", "measure_arch"],
    "remap": ["REMAPS", "build_remapped", "remap"],
    "resnet": ["ResNet", "build"],
})
