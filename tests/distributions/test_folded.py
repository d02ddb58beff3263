"""Tests for FoldedDistribution (folded.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import (
    in_support,
    assert_close,
    assert_fits_cdf,
    assert_log_prob_matches_pyro,
    assert_rsample_grads_match_finite_differences,
    assert_shapes_match_pyro,
    pyro_dist,
)

_LOC = torch.tensor([-1.0, 0.0, 2.0])
_SCALE = torch.tensor([1.0, 0.5, 2.0])


def test_log_prob_matches_pyro_and_the_two_branch_sum() -> None:
    value = torch.rand(4, 3) * 5
    d = dist.FoldedDistribution(dist.Normal(_LOC, _SCALE))
    p = pyro_dist.FoldedDistribution(pyro_dist.Normal(_LOC, _SCALE))
    assert_log_prob_matches_pyro(d, p, value)
    base = dist.Normal(_LOC, _SCALE)
    assert_close(d.log_prob(value), (base.log_prob(value).exp() + base.log_prob(-value).exp()).log())
    assert_shapes_match_pyro(d, p, (2, 3), value)
    assert type(d.expand((2, 3))) is dist.FoldedDistribution


def test_samples_fit_the_folded_cdf() -> None:
    base = dist.Normal(_LOC, _SCALE)
    d = dist.FoldedDistribution(base)
    samples = d.rsample((4000,))
    assert in_support(d, samples)
    assert_fits_cdf(samples, lambda v: base.cdf(v) - base.cdf(-v))


def test_rsample_gradients_match_finite_differences() -> None:
    assert_rsample_grads_match_finite_differences(
        lambda loc, scale: dist.FoldedDistribution(dist.Normal(loc, scale)), [_LOC, _SCALE]
    )


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match=r"Only univariate distributions can be folded: .* event_shape \(3,\)"):
        dist.FoldedDistribution(dist.Dirichlet(torch.ones(3)))
    with pytest.raises(ValueError, match="support"):
        dist.FoldedDistribution(dist.Normal(_LOC, _SCALE)).log_prob(torch.tensor([-1.0, 1.0, 1.0]))
