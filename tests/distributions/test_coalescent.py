"""Tests for the coalescent distributions (coalescent.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def _data(batch: int = 3, leaves: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    leaf_times = torch.rand(batch, leaves) * 5
    coal_times = pyro_dist.CoalescentTimes(leaf_times).sample((2,))
    return leaf_times, coal_times


def test_coalescent_times_log_prob_matches_pyro() -> None:
    leaf_times, coal_times = _data()
    rate = torch.rand(3) + 0.5
    ours = dist.CoalescentTimes(leaf_times, rate).log_prob(coal_times)
    assert ours.shape == (2, 3)
    assert torch.allclose(ours, pyro_dist.CoalescentTimes(leaf_times, rate).log_prob(coal_times), atol=1e-5)


def test_two_leaves_give_an_exponential_merger_time() -> None:
    rate = torch.tensor(2.5)
    t = torch.tensor([[-0.3], [-1.7]])
    expected = dist.Exponential(rate).log_prob(-t.squeeze(-1))
    assert torch.allclose(dist.CoalescentTimes(torch.zeros(2), rate).log_prob(t), expected)


def test_three_contemporary_leaves_density_integrates_to_one() -> None:
    # Times s1 < s2 < 0; integrate the density over the triangle on a grid.
    grid = torch.linspace(-12, 0, 601, dtype=torch.float64)[:-1] + 0.01
    s1, s2 = torch.meshgrid(grid, grid, indexing="ij")
    keep = s1 < s2
    value = torch.stack([s1[keep], s2[keep]], -1)
    d = dist.CoalescentTimes(torch.zeros(3, dtype=torch.float64), validate_args=False)
    assert abs(float(d.log_prob(value).exp().sum()) * 0.02**2 - 1) < 0.02


def test_samples_match_kingman_means_at_the_given_rate() -> None:
    # With n contemporary leaves, E[T_k] for k lineages is 1 / (rate * C(k, 2)).
    torch.manual_seed(0)
    rate = 2.0
    x = dist.CoalescentTimes(torch.zeros(4), rate).sample((3000,))
    assert dist.CoalescentTimes(torch.zeros(4)).support.check(x).all()
    waits = [1 / (rate * k * (k - 1) / 2) for k in (4, 3, 2)]
    expected = -torch.tensor([sum(waits), sum(waits[:2]), waits[0]])
    assert torch.allclose(x.mean(0), expected, rtol=0.07)


def test_coalescent_times_with_rate_matches_pyro_and_constant_rate() -> None:
    leaf_times, coal_times = _data()
    rate_grid = torch.rand(3, 7) + 0.3
    ours = dist.CoalescentTimesWithRate(leaf_times, rate_grid).log_prob(coal_times)
    theirs = pyro_dist.CoalescentTimesWithRate(leaf_times, rate_grid).log_prob(coal_times)
    assert torch.allclose(ours, theirs, atol=1e-5)
    constant = dist.CoalescentTimesWithRate(leaf_times, torch.full((3, 7), 1.7)).log_prob(coal_times)
    assert torch.allclose(constant, dist.CoalescentTimes(leaf_times, 1.7).log_prob(coal_times), atol=1e-4)


def test_rate_likelihood_terms_sum_to_the_distribution_and_match_pyro() -> None:
    leaf_times, coal_times = _data()
    rate_grid = torch.rand(3, 7) + 0.3
    for i in range(3):
        terms = dist.CoalescentRateLikelihood(leaf_times[i], coal_times[0, i], 7)(rate_grid[i])
        theirs = pyro_dist.CoalescentRateLikelihood(leaf_times[i], coal_times[0, i], 7)(rate_grid[i])
        total = dist.CoalescentTimesWithRate(leaf_times[i], rate_grid[i]).log_prob(coal_times[0, i])
        assert torch.allclose(terms, theirs, atol=1e-5)
        assert torch.allclose(terms.sum(), total, atol=1e-4)
        one_at_a_time = torch.stack([
            dist.CoalescentRateLikelihood(leaf_times[i], coal_times[0, i], 7)(rate_grid[i, t], t) for t in range(7)
        ])
        assert torch.allclose(one_at_a_time, terms)


def test_rate_gradients_are_finite() -> None:
    leaf_times, coal_times = _data(1)
    rate_grid = (torch.rand(1, 7) + 0.3).requires_grad_()
    (grad,) = torch.autograd.grad(dist.CoalescentTimesWithRate(leaf_times, rate_grid).log_prob(coal_times).sum(), [rate_grid])
    assert torch.isfinite(grad).all()


def test_shapes_and_expand() -> None:
    d = dist.CoalescentTimesWithRate(torch.zeros(5), torch.ones(4))
    assert (d.batch_shape, d.event_shape, d.duration) == ((), (4,), 4)
    assert d.expand((3,)).batch_shape == (3,)
    assert dist.CoalescentTimes(torch.zeros(2, 5), torch.ones(3, 1)).batch_shape == (3, 2)


def test_invalid_phylogenies_are_rejected() -> None:
    d = dist.CoalescentTimes(torch.zeros(3))
    with pytest.raises(ValueError, match="support"):
        d.log_prob(torch.tensor([-1.0, 1.0]))  # a merger after every leaf: no lineages left
    with pytest.raises(ValueError, match="Invalid"):
        dist.CoalescentRateLikelihood(torch.zeros(3), torch.tensor([1.0, 2.0]), 5)
    with pytest.raises(ValueError, match="duration"):
        dist.CoalescentRateLikelihood(torch.zeros(3), torch.tensor([-1.0, -2.0]), 1)
    assert math.isfinite(float(d.log_prob(torch.tensor([-2.0, -1.0]))))
