"""Tests for LogNormalNegativeBinomial (log_normal_negative_binomial.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, assert_log_prob_matches_pyro, pyro_dist

_COUNT = torch.tensor([2.0, 5.0])
_LOGITS = torch.tensor([-0.5, 0.3])
_NOISE = torch.tensor([0.3, 0.8])


def test_log_prob_and_moments_match_pyro() -> None:
    values = torch.tensor([[0.0, 4.0], [7.0, 1.0], [30.0, 0.0]])
    for points in (1, 8, 20):
        d = dist.LogNormalNegativeBinomial(_COUNT, _LOGITS, _NOISE, num_quad_points=points)
        p = pyro_dist.LogNormalNegativeBinomial(_COUNT, _LOGITS, _NOISE, num_quad_points=points)
        assert_log_prob_matches_pyro(d, p, values)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    expanded = d.expand((3, 2))
    assert expanded.batch_shape == (3, 2) and expanded.num_quad_points == 20
    assert_close(expanded.log_prob(values), d.log_prob(values))


def test_quadrature_pmf_is_normalized_with_the_stated_moments() -> None:
    d = dist.LogNormalNegativeBinomial(
        _COUNT.double(), _LOGITS.double(), _NOISE.double(), num_quad_points=32
    )
    k = torch.arange(3000, dtype=torch.float64).unsqueeze(-1)
    pmf = d.log_prob(k).exp()
    assert_close(pmf.sum(0), torch.ones(2, dtype=torch.float64), atol=1e-6)
    mean = (k * pmf).sum(0)
    assert_close(mean, d.mean, atol=1e-4)
    assert_close(((k - mean) ** 2 * pmf).sum(0), d.variance, atol=1e-2)


def test_small_noise_is_a_negative_binomial() -> None:
    d = dist.LogNormalNegativeBinomial(_COUNT, _LOGITS, torch.full((2,), 1e-5))
    values = torch.tensor([[0.0, 3.0], [5.0, 11.0]])
    assert_close(d.log_prob(values), dist.NegativeBinomial(_COUNT, logits=_LOGITS).log_prob(values))


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="num_quad_points must be positive"):
        dist.LogNormalNegativeBinomial(_COUNT, _LOGITS, _NOISE, num_quad_points=0)
    with pytest.raises(ValueError, match="parameter multiplicative_noise_scale "):
        dist.LogNormalNegativeBinomial(_COUNT, _LOGITS, -_NOISE)
    with pytest.raises(NotImplementedError):
        dist.LogNormalNegativeBinomial(_COUNT, _LOGITS, _NOISE).sample()
