"""Tests for DiscreteHMM and IndependentHMM (hmm.py, _hmm.py)."""

from __future__ import annotations

import importlib
import itertools
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def _brute_force(init: torch.Tensor, trans: torch.Tensor, obs_logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over every state path: ``obs_logp[..., t, s]`` scores time t in state s."""
    init, trans = init.log_softmax(-1), trans.log_softmax(-1)
    states, duration = init.size(-1), obs_logp.size(-2)
    total = torch.full(obs_logp.shape[:-2], -math.inf, dtype=obs_logp.dtype)
    final = torch.full(obs_logp.shape[:-2] + (states,), -math.inf, dtype=obs_logp.dtype)
    for path in itertools.product(range(states), repeat=duration + 1):
        logp = init[..., path[0]]
        for t in range(duration):
            logp = logp + trans[..., t, path[t], path[t + 1]] + obs_logp[..., t, path[t + 1]]
        total = torch.logaddexp(total, logp)
        final[..., path[-1]] = torch.logaddexp(final[..., path[-1]], logp)
    return total, final - total.unsqueeze(-1)


def _model(states: int = 3, duration: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    init = torch.randn(2, states, dtype=torch.float64)
    trans = torch.randn(2, duration, states, states, dtype=torch.float64)
    loc = torch.randn(duration, states, dtype=torch.float64) * 2
    scale = torch.rand(duration, states, dtype=torch.float64) + 0.5
    return init, trans, loc, scale


def test_log_prob_equals_the_sum_over_all_state_paths() -> None:
    init, trans, loc, scale = _model()
    value = torch.randn(5, 2, 4, dtype=torch.float64)
    d = dist.DiscreteHMM(init, trans, dist.Normal(loc, scale))
    obs_logp = dist.Normal(loc, scale).log_prob(value.unsqueeze(-1))
    expected, posterior = _brute_force(init, trans, obs_logp)
    assert torch.allclose(d.log_prob(value), expected, atol=1e-10)
    assert torch.allclose(d.filter(value).logits, posterior, atol=1e-10)


def test_log_prob_matches_pyro_with_categorical_observations() -> None:
    init, trans = torch.randn(3), torch.randn(6, 3, 3)
    probs = torch.rand(6, 3, 4)
    value = torch.randint(4, (10, 6))
    ours = dist.DiscreteHMM(init, trans, dist.Categorical(probs)).log_prob(value)
    theirs = pyro_dist.DiscreteHMM(init, trans, pyro_dist.Categorical(probs)).log_prob(value)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_homogeneous_model_scores_any_length() -> None:
    init, trans = torch.randn(2), torch.randn(2, 2)
    obs = dist.Normal(torch.tensor([-1.0, 1.0]), 1.0)
    d = dist.DiscreteHMM(init, trans, obs)
    assert d.duration is None and d.event_shape == (1,)
    for length in (1, 5, 17):
        value = torch.randn(length)
        theirs = pyro_dist.DiscreteHMM(init, trans, pyro_dist.Normal(torch.tensor([-1.0, 1.0]), 1.0)).log_prob(value)
        assert torch.allclose(d.log_prob(value), theirs, atol=1e-5)
    assert dist.DiscreteHMM(init, trans, obs, duration=7).event_shape == (7,)


def test_samples_match_the_exact_joint_of_two_observations() -> None:
    torch.manual_seed(0)
    init, trans = torch.randn(3), torch.randn(2, 3, 3)
    emission = torch.randn(2, 3, 2)
    d = dist.DiscreteHMM(init, trans, dist.Categorical(logits=emission))
    x = d.sample((20000,))
    assert x.shape == (20000, 2)
    support = torch.tensor(list(itertools.product(range(2), repeat=2)))
    probs = d.log_prob(support).exp()
    counts = torch.stack([(x == s).all(-1).sum() for s in support]).double()
    chi2 = float(((counts - 20000 * probs) ** 2 / (20000 * probs)).sum())
    assert chi2 < 16.3  # chi2(3) at 99.9%


def test_sample_uses_the_observation_event_shape() -> None:
    init, trans = torch.randn(4, 3), torch.randn(5, 3, 3)
    obs = dist.Normal(torch.randn(5, 3, 2), 1.0).to_event(1)
    d = dist.DiscreteHMM(init, trans, obs)
    assert (d.batch_shape, d.event_shape) == ((4,), (5, 2))
    assert d.sample((6,)).shape == (6, 4, 5, 2)
    assert d.log_prob(torch.zeros(6, 4, 5, 2)).shape == (6, 4)


def test_expand_broadcasts_the_initial_distribution() -> None:
    init, trans = torch.randn(3), torch.randn(4, 3, 3)
    obs = dist.Normal(torch.randn(4, 3), 1.0)
    d = dist.DiscreteHMM(init, trans, obs).expand((2, 5))
    value = torch.randn(4)
    assert d.batch_shape == (2, 5)
    assert torch.allclose(d.log_prob(value), dist.DiscreteHMM(init, trans, obs).log_prob(value).expand(2, 5))
    assert d.sample().shape == (2, 5, 4)


def test_bad_arguments_name_the_argument_and_shape() -> None:
    obs = dist.Normal(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"initial_logits.*torch.Size\(\[\]\)"):
        dist.DiscreteHMM(torch.tensor(0.0), torch.zeros(3, 3), obs)
    with pytest.raises(ValueError, match="transition_logits"):
        dist.DiscreteHMM(torch.zeros(3), torch.zeros(3), obs)
    with pytest.raises(ValueError, match="observation_dist"):
        dist.DiscreteHMM(torch.zeros(3), torch.zeros(3, 3), dist.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="duration, event_shape mismatch"):
        dist.DiscreteHMM(torch.zeros(3), torch.zeros(4, 3, 3), obs, duration=5)
    with pytest.raises(ValueError, match="too few dimensions"):
        dist.DiscreteHMM(torch.zeros(3), torch.zeros(3, 3), obs).log_prob(torch.tensor(0.0))


def _gaussian_components(components: int = 3) -> dist.GaussianHMM:
    noise = dist.Normal(torch.zeros(components, 1, 1), torch.rand(components, 1, 1) + 0.5).to_event(1)
    return dist.GaussianHMM(
        dist.Normal(torch.zeros(components, 1), 1.0).to_event(1),
        torch.full((components, 1, 1, 1), 0.8),
        noise,
        torch.ones(components, 1, 1, 1),
        noise,
        duration=6,
    )


def test_independent_hmm_sums_its_components() -> None:
    base = _gaussian_components()
    d = dist.IndependentHMM(base)
    assert (d.batch_shape, d.event_shape, d.duration) == ((), (6, 3), 6)
    value = torch.randn(4, 6, 3)
    expected = base.log_prob(value.transpose(-1, -2).unsqueeze(-1)).sum(-1)
    assert torch.allclose(d.log_prob(value), expected)
    assert d.has_rsample and d.rsample((2,)).shape == (2, 6, 3)
    assert d.expand((5,)).batch_shape == (5,)


def test_independent_hmm_rejects_vector_observations() -> None:
    noise = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    base = dist.GaussianHMM(noise, torch.eye(2), noise, torch.eye(2), noise, duration=3)
    with pytest.raises(ValueError, match="IndependentHMM.*event_shape"):
        dist.IndependentHMM(base)


def test_log_prob_gradients_match_finite_differences() -> None:
    init = torch.randn(3, dtype=torch.float64, requires_grad=True)
    trans = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    value = torch.randn(5, dtype=torch.float64)
    obs = dist.Normal(torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64), 1.0)

    def log_prob(i: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return dist.DiscreteHMM(i, t, obs).log_prob(value)

    assert torch.autograd.gradcheck(log_prob, (init, trans))


def test_values_outside_the_observation_support_are_rejected() -> None:
    d = dist.DiscreteHMM(torch.zeros(2), torch.zeros(3, 2, 2), dist.Categorical(logits=torch.zeros(3, 2, 4)))
    assert d.support.check(d.sample((5,))).all()
    with pytest.raises(ValueError, match="support"):
        d.log_prob(torch.tensor([0, 7, 1]))
