"""Tests for Empirical (empirical.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, assert_log_prob_matches_pyro, pyro_dist


def test_scalar_samples_log_prob_moments_match_pyro() -> None:
    samples = torch.tensor([0.0, 1.0, 1.0, 3.0])
    log_weights = torch.tensor([0.0, 0.5, -1.0, 2.0])
    d, p = dist.Empirical(samples, log_weights), pyro_dist.Empirical(samples, log_weights)
    for value in (torch.tensor(1.0), torch.tensor(3.0), torch.tensor(2.0)):
        assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert d.sample_size == p.sample_size == 4
    assert_close(d.enumerate_support(), p.enumerate_support())
    weights = log_weights.softmax(0)
    assert_close(d.log_prob(torch.tensor(1.0)).exp(), weights[1] + weights[2])


def test_batched_vector_samples_match_pyro() -> None:
    samples = torch.randint(0, 3, (2, 5, 3)).float()
    log_weights = torch.randn(2, 5)
    d, p = dist.Empirical(samples, log_weights), pyro_dist.Empirical(samples, log_weights)
    assert d.batch_shape == p.batch_shape == (2,) and d.event_shape == p.event_shape == (3,)
    assert_log_prob_matches_pyro(d, p, samples[:, 1])
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    torch.manual_seed(8)
    ours = d.sample((7,))
    torch.manual_seed(8)
    assert_close(ours, p.sample((7,)))
    assert ours.shape == (7, 2, 3)


def test_sample_frequencies_follow_the_weights() -> None:
    samples = torch.tensor([10.0, 20.0, 30.0])
    log_weights = torch.tensor([0.2, 0.5, 0.3]).log()
    draws = dist.Empirical(samples, log_weights).sample((6000,))
    frequencies = torch.stack([(draws == s).double().mean() for s in samples])
    stderr = (log_weights.exp() * (1 - log_weights.exp()) / 6000).sqrt()
    assert bool(((frequencies - log_weights.exp()).abs() < 5 * stderr).all())


def test_bad_input_raises_naming_the_distribution_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"Empirical: the shape of ``log_weights`` \(torch.Size\(\[4\]\)\) must match"):
        dist.Empirical(torch.zeros(3, 2), torch.zeros(4))
    d = dist.Empirical(torch.zeros(2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"Empirical.log_prob: ``value.shape`` must be torch.Size\(\[2\]\), got torch.Size\(\[3\]\)"):
        d.log_prob(torch.zeros(3))
    discrete = dist.Empirical(torch.tensor([1, 2]), torch.zeros(2))
    with pytest.raises(ValueError, match="Mean for discrete empirical distribution undefined"):
        discrete.mean
