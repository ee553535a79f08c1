"""Search strategies, registered by name (``strategy: <name>`` in the search and pipeline configs;
``tests/search/test_search_strategies.py`` checks that the configs' ``Literal`` lists the registered names).

Every strategy has one signature, ``strategy(problem, rng) -> Found``: it reads the scorer, the
space, the budget, the search config and the candidates of a candidates file from ``problem``,
draws only from ``rng`` (seeded by the config's ``seed``) and returns the architectures it scored
with their scores. Built-ins:

* ``pool``: ``pool_size`` distinct architectures sampled uniformly under the budget, or the
  architectures of a candidates file that meet it (with the maps the file may carry);
* ``evolution``: (mu + lambda) evolution with the predictor as fitness: a sampled population, then
  each generation mutates the best ``parents`` into new children under the budget and keeps the
  best ``population``; every scored architecture is a candidate.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import torch

from ..errors import DassError
from ..space import Arch, SpaceConfig, mutate, sample_unique
from .budget import Budget
from .config import EvolutionConfig, SearchConfig

log = logging.getLogger("dass.search")


class Scorer(Protocol):
    """What a strategy needs of the adapted predictor (:class:`dass.search.searcher.AdaptedScorer`)."""

    def score(self, archs: list[Arch], fmap: torch.Tensor | None = None) -> torch.Tensor: ...


@dataclass(frozen=True)
class Problem:
    """What a strategy searches: candidates of ``space`` under ``budget``, scored by ``scorer``, with
    the settings of ``cfg``; ``listed``: the :class:`dass.search.searcher.Candidates` of a candidates
    file (None: sample)."""

    scorer: Scorer
    space: SpaceConfig
    budget: Budget
    cfg: SearchConfig
    listed: Any = None


@dataclass
class Found:
    """What a search found: every scored architecture and its score (rows aligned), the maps a
    candidates file gave for them, and, after a proxy shortlist, the ranking (``order``, indices
    best first; None: by score) and which rows were re-scored with proxies (``shortlisted``)."""

    archs: list[Arch]
    scores: torch.Tensor
    fmap: torch.Tensor | None = None
    order: np.ndarray | None = None
    shortlisted: torch.Tensor | None = None


Strategy = Callable[[Problem, np.random.Generator], Found]
_REGISTRY: dict[str, Strategy] = {}


def register(name: str) -> Callable[[Strategy], Strategy]:
    """Register a strategy function under ``name`` (decorator)."""
    def add(fn: Strategy) -> Strategy:
        if name in _REGISTRY:
            raise ValueError(f"search strategy '{name}' registered twice")
        _REGISTRY[name] = fn
        return fn
    return add


def strategy_names() -> list[str]:
    return list(_REGISTRY)


def run_strategy(name: str, problem: Problem, rng: np.random.Generator) -> Found:
    """The registered strategy ``name`` on ``problem`` (DassError naming the known ones otherwise)."""
    if name not in _REGISTRY:
        raise DassError(f"unknown search strategy '{name}' (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[name](problem, rng)


# ----------------------------------------------------------------------------------------------
# Built-ins

def sample_pool(space: SpaceConfig, n: int, budget: Budget, rng: np.random.Generator) -> list[Arch]:
    """``n`` distinct architectures drawn uniformly (the space's sampler) and kept when under budget."""
    try:
        return sample_unique(space, n, rng, accept=budget.accepts, max_tries=1000 * n + 100_000)
    except DassError as e:
        raise DassError(f"{e} under the budget {budget.as_dict()}: lower pool_size or relax the budget") from None


def evolve(scorer: Scorer, space: SpaceConfig, budget: Budget, cfg: EvolutionConfig,
           rng: np.random.Generator) -> tuple[list[Arch], torch.Tensor]:
    """(mu + lambda) evolution; returns every scored architecture and its score."""
    population = sample_pool(space, cfg.population, budget, rng)
    seen: dict[Arch, float] = dict(zip(population, scorer.score(population).tolist()))
    for _ in range(cfg.generations):
        parents = sorted(population, key=lambda a: -seen[a])[:cfg.parents]
        fresh: dict[Arch, None] = {}  # insertion-ordered set
        for _ in range(50 * cfg.population):
            if len(fresh) == cfg.population:
                break
            child = mutate(parents[int(rng.integers(len(parents)))], space, rng, cfg.p_mutate)
            if child not in seen and child not in fresh and budget.accepts(child):
                fresh[child] = None
        children = list(fresh)
        seen.update(zip(children, scorer.score(children).tolist()))
        population = sorted(population + children, key=lambda a: -seen[a])[:cfg.population]
    archs = list(seen)
    return archs, torch.tensor([seen[a] for a in archs])


@register("pool")
def pool(problem: Problem, rng: np.random.Generator) -> Found:
    """A sampled pool, or the candidates file's architectures under the budget."""
    p, listed = problem, problem.listed
    if listed is None:
        archs = sample_pool(p.space, p.cfg.pool_size, p.budget, rng)
        return Found(archs, p.scorer.score(archs))
    kept = listed.subset([i for i, a in enumerate(listed.archs) if p.budget.accepts(a)])
    if not kept.archs:
        raise DassError(f"{p.cfg.candidates}: no candidate meets the budget {p.budget.as_dict()}")
    if len(kept.archs) < len(listed.archs):
        log.info("dropped %d candidates over the budget", len(listed.archs) - len(kept.archs))
    return Found(kept.archs, p.scorer.score(kept.archs, kept.fmap), kept.fmap)


@register("evolution")
def evolution(problem: Problem, rng: np.random.Generator) -> Found:
    """(mu + lambda) evolution with the settings of ``cfg.evolution``."""
    p = problem
    if p.listed is not None:
        raise DassError("candidates=<file> goes with strategy=pool")
    archs, scores = evolve(p.scorer, p.space, p.budget, p.cfg.evolution, rng)
    return Found(archs, scores)
