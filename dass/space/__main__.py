"""``python -m dass.space --config configs/space/paper.yaml --describe``: facts about a space profile.

``--sample N`` prints N sampled architectures with their MACs and parameters (JSON lines).
"""
from __future__ import annotations

import json

import numpy as np

from ..cli import load_config, make_parser, run_main
from ..errors import DassError
from .arch import num_architectures, sample, teacher_arch
from .config import SpaceConfig
from .cost import macs, params


def describe(space: SpaceConfig) -> dict:
    from .encodings import graph_feature_dim, graph_num_nodes, onehot_dim  # torch: only when describing
    t = teacher_arch(space)
    return {
        "name": space.name,
        "num_architectures": num_architectures(space),
        "num_classes": space.num_classes,
        "image_size": space.image_size,
        "teacher": {"depths": list(t.depths), "stage_widths": list(space.stage_widths),
                    "layers": 2 + 2 * sum(t.depths)},
        "teacher_macs": macs(t, space),
        "teacher_params": params(t, space),
        "width_choices": [list(c) for c in space.width_choices],
        "depth_choices": list(space.depths),
        "onehot_dim": onehot_dim(space),
        "graph_nodes": graph_num_nodes(space),
        "graph_node_features": graph_feature_dim(space),
        "stage_resolutions": space.stage_resolutions(),
    }


def main(args) -> int:
    space = load_config(SpaceConfig, args)
    if not 0 <= args.sample <= 1_000_000:
        raise DassError(f"--sample must lie in [0, 10^6], got {args.sample}")
    if not 0 <= args.seed < 2 ** 63:
        raise DassError(f"--seed must lie in [0, 2^63), got {args.seed}")
    if args.sample:
        rng = np.random.default_rng(args.seed)
        for _ in range(args.sample):
            a = sample(space, rng)
            print(json.dumps({**a.to_dict(), "macs": macs(a, space), "params": params(a, space)}))
        return 0
    print(json.dumps(describe(space), indent=2 if args.describe else None))
    return 0


def _parser():
    p = make_parser("python -m dass.space", "Describe or sample a student space profile.", SpaceConfig)
    p.add_argument("--describe", action="store_true", help="print the profile's facts as JSON (default)")
    p.add_argument("--sample", type=int, default=0, help="print N sampled architectures")
    p.add_argument("--seed", type=int, default=0)
    return p


if __name__ == "__main__":
    run_main(main, parser=_parser())
