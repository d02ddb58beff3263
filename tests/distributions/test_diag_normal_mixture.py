"""Tests for MixtureOfDiagNormals and MixtureOfDiagNormalsSharedCovariance (diag_normal_mixture.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import ember.distributions as dist
from ember.distributions.diag_normal_mixture import MixtureShapeError
from tests.distributions._zoo import assert_close, assert_log_prob_matches_pyro, pyro_dist

_K, _D = 3, 2


def _params(batch: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(5)
    locs = torch.randn(batch + (_K, _D), dtype=torch.float64) * 2
    scales = torch.rand(batch + (_K, _D), dtype=torch.float64) + 0.5
    logits = torch.randn(batch + (_K,), dtype=torch.float64)
    return locs, scales, logits


def _brute_force_log_prob(
    value: torch.Tensor, locs: torch.Tensor, scales: torch.Tensor, logits: torch.Tensor
) -> torch.Tensor:
    components = dist.Normal(locs, scales).log_prob(value.unsqueeze(-2)).sum(-1)
    return (logits.log_softmax(-1) + components).logsumexp(-1)


@pytest.mark.parametrize("batch", [(), (4,)])
def test_log_prob_matches_pyro_and_brute_force(batch: tuple[int, ...]) -> None:
    locs, scales, logits = _params(batch)
    value = torch.randn((5,) + batch + (_D,), dtype=torch.float64) * 3
    d = dist.MixtureOfDiagNormals(locs, scales, logits)
    assert_log_prob_matches_pyro(d, pyro_dist.MixtureOfDiagNormals(locs, scales, logits), value)
    assert_close(d.log_prob(value), _brute_force_log_prob(value, locs, scales, logits))
    shared = dist.MixtureOfDiagNormalsSharedCovariance(locs, scales[..., 0, :], logits)
    pyro_shared = pyro_dist.MixtureOfDiagNormalsSharedCovariance(locs, scales[..., 0, :], logits)
    assert_log_prob_matches_pyro(shared, pyro_shared, value)
    assert d.batch_shape == batch and d.event_shape == (_D,)
    expanded = d.expand((3,) + batch)
    assert expanded.batch_shape == (3,) + batch
    assert_close(expanded.log_prob(value[0]), d.log_prob(value[0]).expand((3,) + batch))
    assert shared.expand((2,) + batch).batch_shape == (2,) + batch


def test_samples_are_seeded_like_pyro_and_have_the_mixture_moments() -> None:
    locs, scales, logits = _params()
    d = dist.MixtureOfDiagNormals(locs, scales, logits)
    torch.manual_seed(6)
    samples = d.rsample((6000,))
    torch.manual_seed(6)
    assert_close(samples, pyro_dist.MixtureOfDiagNormals(locs, scales, logits).rsample((6000,)))
    stderr = (d.variance / 6000).sqrt()
    assert bool(((samples.mean(0) - d.mean).abs() < 5 * stderr).all())


def _expectation_gradient_check(
    sample: Callable[[int], torch.Tensor],
    expected: torch.Tensor,
    params: tuple[torch.Tensor, ...],
) -> None:
    """Mean pathwise gradient of ``E f(z)`` over batches equals the exact gradient within 5 SE."""
    exact = torch.autograd.grad(expected, params)
    estimates = []
    for _ in range(8):
        z = sample(1500)
        objective = (z + 0.3 * z**2).sum(-1).mean()
        estimates.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(objective, params)]))
    stacked = torch.stack(estimates)
    stderr = stacked.std(0) / 8**0.5
    error = (stacked.mean(0) - torch.cat([g.reshape(-1) for g in exact])).abs()
    assert bool((error < 5 * stderr + 1e-3).all()), (error, stderr)


def test_rsample_gradients_are_unbiased_for_all_parameters() -> None:
    locs, scales, logits = (p.requires_grad_() for p in _params())
    d = dist.MixtureOfDiagNormals(locs, scales, logits)
    weights = logits.softmax(-1).unsqueeze(-1)
    # E[z + 0.3 z^2] per coordinate, summed: mixture of the components' moments.
    expected = (weights * (locs + 0.3 * (locs**2 + scales**2))).sum()
    _expectation_gradient_check(lambda n: d.rsample((n,)), expected, (locs, scales, logits))


def test_shared_covariance_rsample_gradients_are_unbiased() -> None:
    locs, scales, logits = _params()
    scale = scales[0].clone().requires_grad_()
    locs, logits = locs.requires_grad_(), logits.requires_grad_()
    d = dist.MixtureOfDiagNormalsSharedCovariance(locs, scale, logits)
    weights = logits.softmax(-1).unsqueeze(-1)
    expected = (weights * (locs + 0.3 * (locs**2 + scale**2))).sum()
    _expectation_gradient_check(lambda n: d.rsample((n,)), expected, (locs, scale, logits))


def test_rsample_without_gradients_skips_the_surrogate() -> None:
    locs, scales, logits = _params()
    sample = dist.MixtureOfDiagNormals(locs, scales, logits).rsample((3,))
    assert not sample.requires_grad and sample.shape == (3, _D)


def test_bad_shapes_raise_errors_naming_the_distribution_and_shapes() -> None:
    locs, scales, logits = _params()
    with pytest.raises(MixtureShapeError, match=r"MixtureOfDiagNormals: coord_scale .* coord_scale \(3, 1\)"):
        dist.MixtureOfDiagNormals(locs, scales[:, :1], logits)
    with pytest.raises(AssertionError, match="component_logits"):
        dist.MixtureOfDiagNormals(locs, scales, logits[:2])
    with pytest.raises(ValueError, match="locs must be K x D"):
        dist.MixtureOfDiagNormals(locs[0], scales[0], logits)
    with pytest.raises(MixtureShapeError, match="MixtureOfDiagNormalsSharedCovariance: coord_scale"):
        dist.MixtureOfDiagNormalsSharedCovariance(locs, scales, logits)
    with pytest.raises(NotImplementedError, match="D = 1"):
        dist.MixtureOfDiagNormalsSharedCovariance(locs[:, :1], scales[0, :1], logits)
    with pytest.raises(ValueError, match="parameter coord_scale .* of distribution MixtureOfDiagNormals"):
        dist.MixtureOfDiagNormals(locs, -scales, logits)
