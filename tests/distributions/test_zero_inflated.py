"""Tests for the zero-inflated distributions (zero_inflated.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import (
    in_support,
    assert_close,
    assert_fits_pmf,
    assert_log_prob_matches_pyro,
    assert_moments,
    assert_shapes_match_pyro,
    pyro_dist,
)

_RATE = torch.tensor([0.5, 2.0, 7.0])
_GATE = torch.tensor([0.1, 0.5, 0.9])
_VALUES = torch.tensor([[0.0, 1.0, 5.0], [3.0, 0.0, 0.0], [0.0, 9.0, 12.0]])


@pytest.mark.parametrize("by_logits", [False, True])
def test_zero_inflated_poisson_matches_pyro(by_logits: bool) -> None:
    kwargs: dict[str, Any] = {"gate_logits": _GATE.logit()} if by_logits else {"gate": _GATE}
    d, p = dist.ZeroInflatedPoisson(_RATE, **kwargs), pyro_dist.ZeroInflatedPoisson(_RATE, **kwargs)
    assert_log_prob_matches_pyro(d, p, _VALUES)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert_close(d.gate, _GATE)
    assert_close(d.gate_logits, _GATE.logit(), atol=1e-4)
    # Ember expands after both parameterizations are cached; Pyro raises there.
    assert_close(d.expand((2, 3)).rate, _RATE.expand(2, 3))
    fresh = dist.ZeroInflatedPoisson(_RATE, **kwargs)
    assert_shapes_match_pyro(fresh, pyro_dist.ZeroInflatedPoisson(_RATE, **kwargs), (2, 3), _VALUES)


@pytest.mark.parametrize("by_logits", [False, True])
def test_zero_inflated_negative_binomial_matches_pyro(by_logits: bool) -> None:
    kwargs: dict[str, Any] = {"gate_logits": _GATE.logit()} if by_logits else {"gate": _GATE}
    count, probs = torch.tensor([1.0, 3.0, 0.5]), torch.tensor([0.3, 0.5, 0.8])
    d = dist.ZeroInflatedNegativeBinomial(count, probs=probs, **kwargs)
    p = pyro_dist.ZeroInflatedNegativeBinomial(count, probs=probs, **kwargs)
    assert_log_prob_matches_pyro(d, p, _VALUES)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert_close(d.total_count, count)
    assert_close(d.probs, probs)
    assert_close(d.logits, probs.logit(), atol=1e-4)
    assert d.expand((5, 3)).batch_shape == (5, 3)
    fresh = dist.ZeroInflatedNegativeBinomial(count, probs=probs, **kwargs)
    pyro_fresh = pyro_dist.ZeroInflatedNegativeBinomial(count, probs=probs, **kwargs)
    assert_shapes_match_pyro(fresh, pyro_fresh, (5, 3), _VALUES)


def test_generic_zero_inflated_distribution_matches_pyro_and_inherits_support() -> None:
    base = dist.Binomial(4, torch.tensor([0.2, 0.6, 0.9]))
    d = dist.ZeroInflatedDistribution(base, gate=_GATE)
    p = pyro_dist.ZeroInflatedDistribution(pyro_dist.Binomial(4, torch.tensor([0.2, 0.6, 0.9])), gate=_GATE)
    values = torch.tensor([[0.0, 1.0, 4.0], [2.0, 0.0, 3.0]])
    assert_log_prob_matches_pyro(d, p, values)
    assert type(d.support) is type(base.support)
    assert_close(d.support.upper_bound, base.support.upper_bound)


def test_samples_fit_the_pmf() -> None:
    d = dist.ZeroInflatedPoisson(_RATE, gate=_GATE)
    samples = d.sample((4000,))
    assert in_support(d, samples)
    assert_fits_pmf(samples, d.log_prob)
    assert_moments(samples, d.mean, d.variance)


def test_gate_and_gate_logits_are_exclusive() -> None:
    with pytest.raises(ValueError, match="Either `gate` or `gate_logits`"):
        dist.ZeroInflatedPoisson(_RATE, gate=_GATE, gate_logits=_GATE)
    with pytest.raises(ValueError, match="Either `gate` or `gate_logits`"):
        dist.ZeroInflatedPoisson(_RATE)


def test_bad_input_raises_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="parameter gate .* of distribution ZeroInflatedPoisson"):
        dist.ZeroInflatedPoisson(_RATE, gate=_GATE + 1)
    with pytest.raises(ValueError, match="parameter rate "):
        dist.ZeroInflatedPoisson(-_RATE, gate=_GATE)
    with pytest.raises(ValueError, match="expected empty base_dist.event_shape"):
        dist.ZeroInflatedDistribution(dist.Dirichlet(torch.ones(3)), gate=torch.tensor(0.5))
    with pytest.raises(ValueError, match="support"):
        dist.ZeroInflatedPoisson(_RATE, gate=_GATE).log_prob(torch.tensor([-1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="shape mismatch"):
        dist.ZeroInflatedPoisson(_RATE, gate=torch.full((2,), 0.5))
