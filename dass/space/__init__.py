"""The OFA-style ResNet student space: architectures, costs, networks, encodings, remapping,
functional embedding. See each module's docstring for the conventions it fixes."""
from .arch import (Arch, mutate, neighbours, num_architectures, sample, sample_unique, teacher_arch,
                   validate)
from .config import SpaceConfig, load_space
from .cost import macs, params
from .embed import functional_map_single, functional_maps, noise_input
from .encodings import (decode_graph, decode_onehot, graph, graph_batch, onehot, onehot_batch,
                        onehot_dim)
from .remap import REMAPS, build_remapped, remap
from .resnet import ResNet, build

__all__ = [
    "Arch", "SpaceConfig", "load_space", "validate", "sample", "sample_unique", "mutate", "neighbours",
    "num_architectures", "teacher_arch", "macs", "params", "ResNet", "build", "remap", "build_remapped", "REMAPS",
    "onehot", "onehot_batch", "decode_onehot", "onehot_dim", "graph", "graph_batch", "decode_graph",
    "noise_input", "functional_maps", "functional_map_single",
]
