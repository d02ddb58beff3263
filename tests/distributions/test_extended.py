"""Tests for ExtendedBinomial and ExtendedBetaBinomial (extended.py)."""

from __future__ import annotations

import math

import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, assert_log_prob_matches_pyro, pyro_dist

_N = torch.tensor([-2.0, 0.0, 3.0, 6.0])
_VALUES = torch.tensor([[-1.0, 0.0, 2.0, 7.0], [0.0, 1.0, 3.0, 6.0], [-3.0, 0.0, 4.0, 0.0]])


def test_extended_binomial_matches_pyro_and_binomial_inside_the_support() -> None:
    probs = torch.tensor([0.2, 0.5, 0.7, 0.9])
    d, p = dist.ExtendedBinomial(_N, probs), pyro_dist.ExtendedBinomial(_N, probs)
    assert_log_prob_matches_pyro(d, p, _VALUES)
    inside = (_VALUES >= 0) & (_VALUES <= _N)
    binomial = dist.Binomial(_N.clamp(min=0), probs, validate_args=False).log_prob(_VALUES)
    assert_close(d.log_prob(_VALUES)[inside], binomial[inside])
    assert bool((d.log_prob(_VALUES)[~inside] == -math.inf).all())


def test_extended_beta_binomial_matches_pyro_and_beta_binomial_inside_the_support() -> None:
    c1, c0 = torch.tensor([0.5, 1.0, 2.0, 3.0]), torch.tensor([2.0, 1.0, 0.5, 1.0])
    d, p = dist.ExtendedBetaBinomial(c1, c0, _N), pyro_dist.ExtendedBetaBinomial(c1, c0, _N)
    assert_log_prob_matches_pyro(d, p, _VALUES)
    inside = (_VALUES >= 0) & (_VALUES <= _N)
    reference = dist.BetaBinomial(c1, c0, _N.clamp(min=0), validate_args=False).log_prob(
        _VALUES.clamp(min=0)
    )
    assert_close(d.log_prob(_VALUES)[inside], reference[inside])
    assert bool((d.log_prob(_VALUES)[~inside] == -math.inf).all())


def test_extended_distributions_still_reject_non_integer_values() -> None:
    d = dist.ExtendedBinomial(_N, torch.full((4,), 0.5))
    try:
        d.log_prob(torch.full((4,), 0.5))
    except ValueError as error:
        assert "support" in str(error)
    else:
        raise AssertionError("expected a ValueError")
