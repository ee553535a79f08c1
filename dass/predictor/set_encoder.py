"""A Set Transformer (Lee et al., 2019; the dataset encoder of MetaD2A) over a task's image features.

Input: ``M x C`` rows (``dataset_feats`` of a task: the teacher's pooled last-stage features of M
train images) or ``B x M x C``; output: ``B x out`` (B = 1 for a single set), invariant to the
order of the rows.

Blocks: ``MAB(X, Y)`` multi-head attention of queries X over keys/values Y with a residual and a
row-wise feed-forward residual; ``SAB(X) = MAB(X, X)``; ``ISAB(X) = MAB(X, MAB(I, X))`` with
learned inducing points I; ``PMA(X) = MAB(S, X)`` with k learned seeds. The encoder is
ISAB -> ISAB, the decoder PMA(1) -> SAB -> linear.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MAB(nn.Module):
    def __init__(self, q_dim: int, k_dim: int, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(q_dim, dim)
        self.k = nn.Linear(k_dim, dim)
        self.v = nn.Linear(k_dim, dim)
        self.o = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q = self.q(x)
        qh, kh, vh = self._split(q), self._split(self.k(y)), self._split(self.v(y))
        att = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1]), dim=-1)
        h = q + (att @ vh).transpose(1, 2).reshape(q.shape)
        return h + F.relu(self.o(h))


class SAB(nn.Module):
    def __init__(self, in_dim: int, dim: int, heads: int):
        super().__init__()
        self.mab = MAB(in_dim, in_dim, dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mab(x, x)


class ISAB(nn.Module):
    def __init__(self, in_dim: int, dim: int, heads: int, inducing: int):
        super().__init__()
        self.inducing = nn.Parameter(torch.empty(1, inducing, dim))
        nn.init.xavier_uniform_(self.inducing)
        self.mab_in = MAB(dim, in_dim, dim, heads)
        self.mab_out = MAB(in_dim, dim, dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mab_in(self.inducing.expand(x.shape[0], -1, -1), x)
        return self.mab_out(x, h)


class PMA(nn.Module):
    def __init__(self, dim: int, heads: int, seeds: int = 1):
        super().__init__()
        self.seeds = nn.Parameter(torch.empty(1, seeds, dim))
        nn.init.xavier_uniform_(self.seeds)
        self.mab = MAB(dim, dim, dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mab(self.seeds.expand(x.shape[0], -1, -1), x)


class SetEncoder(nn.Module):
    def __init__(self, in_dim: int, dim: int = 64, out: int = 64, heads: int = 4, inducing: int = 16):
        super().__init__()
        self.enc1 = ISAB(in_dim, dim, heads, inducing)
        self.enc2 = ISAB(dim, dim, heads, inducing)
        self.pool = PMA(dim, heads)
        self.dec = SAB(dim, dim, heads)
        self.out = nn.Linear(dim, out)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        x = rows[None] if rows.dim() == 2 else rows
        h = self.dec(self.pool(self.enc2(self.enc1(x))))
        return self.out(h[:, 0])
