"""Tests for Rejector (rejector.py)."""

from __future__ import annotations

import math

import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, assert_fits_cdf


def _exponential_from_gamma_proposal(rate: torch.Tensor) -> dist.Rejector:
    # Propose Exponential(rate / 2); accept with exp(-x * rate / 2): the result is Exponential(rate).
    proposal = dist.Exponential(rate / 2)
    return dist.Rejector(proposal, lambda x: -x * rate / 2, (torch.tensor(0.5)).log().expand(rate.shape))


def test_accepted_samples_follow_the_target_density() -> None:
    rate = torch.tensor([0.5, 1.0, 3.0])
    d = _exponential_from_gamma_proposal(rate)
    samples = d.rsample((3000,))
    assert samples.shape == (3000, 3)
    assert_fits_cdf(samples, dist.Exponential(rate).cdf)
    value = torch.rand(4, 3) * 3
    assert_close(d.log_prob(value), dist.Exponential(rate).log_prob(value))


def test_score_parts_carry_the_acceptance_score_function() -> None:
    rate = torch.tensor([1.0, 2.0])
    d = _exponential_from_gamma_proposal(rate)
    x = d.rsample()
    parts = d.score_parts(x)
    assert isinstance(parts.score_function, torch.Tensor)
    assert_close(parts.score_function, -x * rate / 2 - math.log(0.5))
    assert_close(parts.log_prob, d.log_prob(x))
    assert parts.entropy_term is parts.log_prob


def test_rsample_gradients_flow_through_accepted_proposals() -> None:
    rate = torch.tensor([1.0, 2.0], requires_grad=True)
    samples = _exponential_from_gamma_proposal(rate).rsample((50,))
    (grad,) = torch.autograd.grad(samples.sum(), rate)
    # d/d(rate) of x = E / (rate / 2) is -x / rate, summed over accepted draws.
    assert_close(grad, -(samples / rate).sum(0).detach(), atol=1e-4)
