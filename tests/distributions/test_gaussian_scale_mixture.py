"""Tests for GaussianScaleMixture (gaussian_scale_mixture.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from ember.distributions.diag_normal_mixture import MixtureShapeError
from tests.distributions._zoo import assert_close, assert_log_prob_matches_pyro, pyro_dist

_COORD = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
_LOGITS = torch.tensor([0.3, -0.2], dtype=torch.float64)
_SCALE = torch.tensor([0.7, 2.5], dtype=torch.float64)


def test_log_prob_matches_pyro_and_a_diagonal_normal_mixture() -> None:
    d = dist.GaussianScaleMixture(_COORD, _LOGITS, _SCALE)
    p = pyro_dist.GaussianScaleMixture(_COORD, _LOGITS, _SCALE)
    for _ in range(3):
        value = torch.randn(3, dtype=torch.float64) * 2
        assert_log_prob_matches_pyro(d, p, value)
    values = torch.randn(5, 3, dtype=torch.float64)
    locs = torch.zeros(2, 3, dtype=torch.float64)
    reference = dist.MixtureOfDiagNormals(locs, _SCALE.unsqueeze(-1) * _COORD, _LOGITS)
    assert_close(d.log_prob(values), reference.log_prob(values))
    assert d.batch_shape == p.batch_shape and d.event_shape == p.event_shape == (3,)


def test_samples_are_seeded_like_pyro_with_the_stated_variance() -> None:
    d = dist.GaussianScaleMixture(_COORD, _LOGITS, _SCALE)
    torch.manual_seed(7)
    samples = d.rsample((8000,))
    torch.manual_seed(7)
    assert_close(samples, pyro_dist.GaussianScaleMixture(_COORD, _LOGITS, _SCALE).rsample((8000,)))
    # The variance of the squared sample has a fourth moment; 6 SE of a heavy-ish tail.
    second = samples.pow(2)
    stderr = second.std(0) / 8000**0.5
    assert bool(((second.mean(0) - d.variance).abs() < 6 * stderr).all())


def test_rsample_gradients_are_unbiased() -> None:
    coord, logits, scale = (t.clone().requires_grad_() for t in (_COORD, _LOGITS, _SCALE))
    d = dist.GaussianScaleMixture(coord, logits, scale)
    weights = logits.softmax(-1)
    expected = ((weights * scale**2).sum() * coord**2).sum()  # E |z|^2
    exact = torch.cat([g.reshape(-1) for g in torch.autograd.grad(expected, (coord, logits, scale))])
    estimates = []
    for _ in range(10):
        z = d.rsample((2000,))
        grads = torch.autograd.grad(z.pow(2).sum(-1).mean(), (coord, logits, scale))
        estimates.append(torch.cat([g.reshape(-1) for g in grads]))
    stacked = torch.stack(estimates)
    error = (stacked.mean(0) - exact).abs()
    assert bool((error < 5 * stacked.std(0) / 10**0.5 + 1e-3).all()), error


def test_bad_shapes_raise() -> None:
    with pytest.raises(NotImplementedError, match="D = 1"):
        dist.GaussianScaleMixture(_COORD[:1], _LOGITS, _SCALE)
    with pytest.raises(MixtureShapeError, match=r"component_logits \(2,\), component_scale \(3,\)"):
        dist.GaussianScaleMixture(_COORD, _LOGITS, _COORD)
    with pytest.raises(AssertionError, match="coord_scale must be D"):
        dist.GaussianScaleMixture(_COORD.expand(2, 3), _LOGITS, _SCALE)
    with pytest.raises(ValueError, match="parameter component_scale "):
        dist.GaussianScaleMixture(_COORD, _LOGITS, -_SCALE)
