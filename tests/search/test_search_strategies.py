"""The search strategies' registry (dass/search/strategies.py) and the configs that name them."""
from __future__ import annotations

import typing
from pathlib import Path

import numpy as np
import pytest
import torch

from dass.errors import DassError
from dass.pipeline.config import PipelineConfig
from dass.search import strategies
from dass.search.config import SearchConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cls", [SearchConfig, PipelineConfig])
def test_config_literal_lists_the_registered_strategies(cls):
    allowed = typing.get_args(typing.get_type_hints(cls)["strategy"])
    assert list(allowed) == strategies.strategy_names() == ["pool", "evolution"]


def test_unknown_strategy_names_the_known_ones():
    with pytest.raises(DassError, match="unknown search strategy 'grid' \\(known: pool, evolution\\)"):
        strategies.run_strategy("grid", None, np.random.default_rng(0))


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        strategies.register("pool")(lambda problem, rng: None)


class CountingScorer:
    """Scores an architecture by its total depth (a value computed here, not by the code under test)."""

    def __init__(self):
        self.calls = 0

    def score(self, archs, fmap=None):
        self.calls += 1
        return torch.tensor([float(sum(a.depths)) for a in archs])


def test_pool_scores_the_sample_the_sampler_draws():
    from dass.search.budget import Budget
    from dass.space import load_space, sample_unique

    space = load_space(REPO / "configs/space/cpu.yaml")
    budget = Budget(space=space, num_classes=10)
    cfg = SearchConfig(pool_size=7)
    found = strategies.run_strategy("pool", strategies.Problem(CountingScorer(), space, budget, cfg),
                                    np.random.default_rng(3))
    expected = sample_unique(space, 7, np.random.default_rng(3), accept=budget.accepts, max_tries=1000 * 7 + 100_000)
    assert found.archs == expected
    assert found.scores.tolist() == [float(sum(a.depths)) for a in expected]
    assert found.fmap is None and found.order is None
