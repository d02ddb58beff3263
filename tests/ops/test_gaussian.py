"""Tests for ember.ops.gaussian."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.ops.gaussian import (
    AffineNormal,
    Gaussian,
    gaussian_tensordot,
    matrix_and_mvn_to_gaussian,
    mvn_to_gaussian,
    sequential_gaussian_filter_sample,
    sequential_gaussian_tensordot,
)

pyro_gaussian: Any = importlib.import_module("pyro.ops.gaussian")
F64 = torch.float64


def _random_gaussian(batch: tuple[int, ...], dim: int) -> Gaussian:
    a = torch.randn(batch + (dim, dim), dtype=F64)
    precision = a @ a.mT + torch.eye(dim, dtype=F64)
    return Gaussian(torch.randn(batch, dtype=F64), torch.randn(batch + (dim,), dtype=F64), precision)


def _pyro(g: Gaussian) -> Any:
    return pyro_gaussian.Gaussian(g.log_normalizer, g.info_vec, g.precision)


def _grid_logsumexp(g: Gaussian, lim: float = 9.0, points: int = 201) -> torch.Tensor:
    """Brute-force log integral of a 2-D Gaussian over a grid."""
    axis = torch.linspace(-lim, lim, points, dtype=F64)
    x, y = torch.meshgrid(axis, axis, indexing="ij")
    values = torch.stack([x, y], -1).reshape(-1, 2)
    step = (axis[1] - axis[0]) ** 2
    return (g.log_density(values).logsumexp(0) + step.log())


def test_log_density_is_the_quadratic_form() -> None:
    g = _random_gaussian((3,), 2)
    x = torch.randn(3, 2, dtype=F64)
    expected = -0.5 * torch.einsum("bi,bij,bj->b", x, g.precision, x) + (x * g.info_vec).sum(-1) + g.log_normalizer
    assert torch.allclose(g.log_density(x), expected)


def test_event_logsumexp_equals_a_grid_integral() -> None:
    g = _random_gaussian((), 2)
    g = Gaussian(g.log_normalizer, g.info_vec * 0.3, g.precision)
    assert torch.allclose(g.event_logsumexp(), _grid_logsumexp(g), atol=1e-6)


def test_condition_and_marginalize_agree_with_their_definitions() -> None:
    g = _random_gaussian((4,), 3)
    x = torch.randn(4, 3, dtype=F64)
    assert torch.allclose(g.condition(x[..., 2:]).log_density(x[..., :2]), g.log_density(x))
    assert torch.allclose(g.left_condition(x[..., :1]).log_density(x[..., 1:]), g.log_density(x))
    # Marginalizing then integrating equals integrating everything.
    for left, right in ((1, 0), (0, 2)):
        assert torch.allclose(g.marginalize(left=left, right=right).event_logsumexp(), g.event_logsumexp())
    with pytest.raises(NotImplementedError):
        g.marginalize(left=1, right=1)


def test_mvn_to_gaussian_reproduces_the_density() -> None:
    loc, a = torch.randn(2, 3, dtype=F64), torch.randn(3, 3, dtype=F64)
    mvn = dist.MultivariateNormal(loc, a @ a.T + torch.eye(3, dtype=F64))
    x = torch.randn(5, 2, 3, dtype=F64)
    assert torch.allclose(mvn_to_gaussian(mvn).log_density(x), mvn.log_prob(x))
    diagonal = dist.Normal(loc, torch.rand(2, 3, dtype=F64) + 0.5).to_event(1)
    assert torch.allclose(mvn_to_gaussian(diagonal).log_density(x), diagonal.log_prob(x))
    with pytest.raises(ValueError, match="mvn_to_gaussian"):
        mvn_to_gaussian(dist.Normal(loc, 1.0))


@pytest.mark.parametrize("diagonal", [True, False], ids=["affine_normal", "dense"])
def test_matrix_and_mvn_is_the_conditional_density(diagonal: bool) -> None:
    matrix = torch.randn(2, 3, dtype=F64)
    loc, scale = torch.randn(3, dtype=F64), torch.rand(3, dtype=F64) + 0.5
    noise: Any = dist.Normal(loc, scale).to_event(1) if diagonal else dist.MultivariateNormal(loc, torch.diag(scale**2))
    g = matrix_and_mvn_to_gaussian(matrix, noise)
    assert isinstance(g, AffineNormal) == diagonal
    x, y = torch.randn(4, 2, dtype=F64), torch.randn(4, 3, dtype=F64)
    expected = dist.Normal(x @ matrix + loc, scale).to_event(1).log_prob(y)
    assert torch.allclose(g.condition(y).log_density(x), expected)
    assert torch.allclose(g.left_condition(x).condition(y).log_density(torch.zeros(4, 0, dtype=F64)), expected)
    dense = g.to_gaussian() if isinstance(g, AffineNormal) else g
    assert torch.allclose(dense.log_density(torch.cat([x, y], -1)), expected)


def test_tensordot_matches_pyro_and_brute_force() -> None:
    x, y = _random_gaussian((3,), 3), _random_gaussian((3,), 2)
    ours = gaussian_tensordot(x, y, dims=1)
    theirs = pyro_gaussian.gaussian_tensordot(_pyro(x), _pyro(y), dims=1)
    for name in ("log_normalizer", "info_vec", "precision"):
        assert torch.allclose(getattr(ours, name), getattr(theirs, name))
    # Integrating out the shared variable after joining equals the tensordot.
    joint = x.event_pad(right=1) + y.event_pad(left=2)
    perm = torch.tensor([0, 1, 3, 2])
    assert torch.allclose(joint.event_permute(perm).marginalize(right=1).precision, ours.precision)
    with pytest.raises(ValueError, match="cannot contract 4"):
        gaussian_tensordot(x, y, dims=4)


def test_sequential_tensordot_matches_pairwise_chaining_and_pyro() -> None:
    g = _random_gaussian((2, 7), 4)
    ours = sequential_gaussian_tensordot(g)
    chained = g[..., 0]
    for t in range(1, 7):
        chained = gaussian_tensordot(chained, g[..., t], dims=2)
    theirs = pyro_gaussian.sequential_gaussian_tensordot(_pyro(g))
    for name in ("log_normalizer", "info_vec", "precision"):
        assert torch.allclose(getattr(ours, name), getattr(chained, name))
        assert torch.allclose(getattr(ours, name), getattr(theirs, name))
    with pytest.raises(ValueError, match="not even"):
        sequential_gaussian_tensordot(_random_gaussian((3,), 3))


@pytest.mark.parametrize("duration", [1, 2, 5, 8])
def test_filter_sample_matches_pyro_on_the_same_noise(duration: int) -> None:
    init, trans = _random_gaussian((3,), 2), _random_gaussian((3, duration), 4)
    noise = torch.randn(2, 3, duration + 1, 2, dtype=F64)
    ours = sequential_gaussian_filter_sample(init, trans, (2,), noise=noise)
    theirs = pyro_gaussian.sequential_gaussian_filter_sample(_pyro(init), _pyro(trans), (2,), noise=noise)
    assert ours.shape == (2, 3, duration + 1, 2)
    assert torch.allclose(ours, theirs)


def test_filter_sample_with_zero_noise_is_the_joint_mode() -> None:
    init, trans = _random_gaussian((), 1), _random_gaussian((3,), 2)
    mode = sequential_gaussian_filter_sample(init, trans, noise=torch.zeros(4, 1, dtype=F64))
    joint = init.event_pad(right=3)
    for t in range(3):
        joint = joint + trans[(t,)].event_pad(left=t, right=2 - t)
    expected = torch.linalg.solve(joint.precision, joint.info_vec)
    assert torch.allclose(mode.squeeze(-1), expected)
    with pytest.raises(ValueError, match="noise of shape"):
        sequential_gaussian_filter_sample(init, trans, noise=torch.zeros(3, 1, dtype=F64))


def test_rsample_has_the_gaussian_moments() -> None:
    g = _random_gaussian((), 2)
    x = g.rsample((40000,))
    covariance = torch.linalg.inv(g.precision)
    assert torch.allclose(x.mean(0), covariance @ g.info_vec, atol=5 * float(covariance.diagonal().max().sqrt()) / 200)
    assert torch.allclose(torch.cov(x.T), covariance, rtol=0.05, atol=0.02)
    assert math.isfinite(float(g.rsample().sum()))


def test_shape_methods() -> None:
    g = _random_gaussian((1, 3), 2)
    assert g.expand((4, 3)).batch_shape == (4, 3)
    assert g.reshape((3, 1)).batch_shape == (3, 1)
    assert Gaussian.cat([g, g], dim=-1).batch_shape == (1, 6)
    assert g[:, 1:].batch_shape == (1, 2)
    assert (g - 1.0).log_normalizer.equal(g.log_normalizer - 1)
    with pytest.raises(ValueError, match=r"info_vec of shape.*\(2,\).*\(3, 3\)"):
        Gaussian(torch.tensor(0.0), torch.zeros(2), torch.eye(3))


def test_tensordot_and_filter_sample_gradients_match_finite_differences() -> None:
    x, y = _random_gaussian((), 3), _random_gaussian((), 3)
    info = x.info_vec.clone().requires_grad_()
    precision = y.precision.clone().requires_grad_()

    def contracted(i: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        symmetric = (p + p.mT) / 2  # precisions are symmetric; the algebra reads either triangle
        g = gaussian_tensordot(
            Gaussian(x.log_normalizer, i, x.precision), Gaussian(y.log_normalizer, y.info_vec, symmetric), 2
        )
        return g.event_logsumexp()

    assert torch.autograd.gradcheck(contracted, (info, precision))
    init, trans = _random_gaussian((), 1), _random_gaussian((3,), 2)
    noise = torch.randn(4, 1, dtype=F64)
    trans_info = trans.info_vec.clone().requires_grad_()

    def sample(i: torch.Tensor) -> torch.Tensor:
        return sequential_gaussian_filter_sample(init, Gaussian(trans.log_normalizer, i, trans.precision), noise=noise)

    assert torch.autograd.gradcheck(sample, (trans_info,))
