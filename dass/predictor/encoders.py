"""Encoders of one student (or teacher): functional map, architecture one-hot, architecture graph.

* :class:`MapEncoder`: ``N x C x r x r`` -> ``N x out``: conv3x3 stride 2 (padding 1, C -> hidden),
  ReLU, conv3x3 stride 2 (hidden -> out), ReLU, global average pool. Padding 1 keeps maps as small
  as 1 x 1 valid (a 2 x 2 map becomes 1 x 1 after the first conv).
* :class:`OnehotEncoder`: ``N x D`` -> ``N x out``, one linear layer (the paper's A encoder).
* :class:`GraphEncoder`: a GIN over the block graph of :func:`dass.space.graph_batch`
  (``x: N x n x F``, ``adj: N x n x n`` directed data-flow edges, ``mask: N x n``). Edges are made
  undirected; each layer computes ``MLP((1 + eps) h_i + sum_{j ~ i} h_j)`` on present nodes; the
  readout is the masked mean over present nodes followed by a linear layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MapEncoder(nn.Module):
    def __init__(self, in_channels: int, hidden: int = 128, out: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(hidden, out, 3, stride=2, padding=1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(maps))
        h = F.relu(self.conv2(h))
        return h.mean(dim=(2, 3))


class OnehotEncoder(nn.Module):
    def __init__(self, in_dim: int, out: int = 64):
        super().__init__()
        self.fc = nn.Linear(in_dim, out)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.fc(onehot)


class GINLayer(nn.Module):
    def __init__(self, in_dim: int, out: int):
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(()))
        self.fc1 = nn.Linear(in_dim, out)
        self.fc2 = nn.Linear(out, out)

    def forward(self, h: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        agg = (1 + self.eps) * h + adj @ h
        return self.fc2(F.relu(self.fc1(agg))) * mask[..., None]


class GraphEncoder(nn.Module):
    def __init__(self, node_dim: int, hidden: int = 64, out: int = 64, layers: int = 2):
        super().__init__()
        dims = [node_dim] + [hidden] * layers
        self.layers = nn.ModuleList(GINLayer(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.readout = nn.Linear(hidden, out)

    def forward(self, graph: dict[str, torch.Tensor]) -> torch.Tensor:
        x, adj, mask = graph["x"], graph["adj"], graph["mask"]
        und = ((adj + adj.transpose(1, 2)) > 0).to(x.dtype)
        h = x * mask[..., None]
        for i, layer in enumerate(self.layers):
            h = layer(h, und, mask)
            if i + 1 < len(self.layers):
                h = F.relu(h)
        pooled = h.sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
        return self.readout(pooled)
