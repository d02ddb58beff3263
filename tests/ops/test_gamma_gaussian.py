"""Tests for ember.ops.gamma_gaussian."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.ops.gamma_gaussian import (
    GammaGaussian,
    gamma_and_mvn_to_gamma_gaussian,
    gamma_gaussian_tensordot,
    matrix_and_mvn_to_gamma_gaussian,
    scale_mvn,
    sequential_gamma_gaussian_tensordot,
)

pyro_gamma_gaussian: Any = importlib.import_module("pyro.ops.gamma_gaussian")
F64 = torch.float64


def _random(batch: tuple[int, ...], dim: int) -> GammaGaussian:
    a = torch.randn(batch + (dim, dim), dtype=F64)
    return GammaGaussian(
        torch.randn(batch, dtype=F64),
        torch.randn(batch + (dim,), dtype=F64),
        a @ a.mT + torch.eye(dim, dtype=F64),
        torch.rand(batch, dtype=F64) + 2,
        torch.rand(batch, dtype=F64) + 5,
    )


def _pyro(g: GammaGaussian) -> Any:
    return pyro_gamma_gaussian.GammaGaussian(g.log_normalizer, g.info_vec, g.precision, g.alpha, g.beta)


def test_joint_of_gamma_and_mvn_is_the_product_density() -> None:
    gamma = dist.Gamma(torch.tensor(3.0, dtype=F64), torch.tensor(2.0, dtype=F64))
    loc, cov = torch.randn(2, dtype=F64), torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=F64)
    g = gamma_and_mvn_to_gamma_gaussian(gamma, dist.MultivariateNormal(loc, cov))
    x, s = torch.randn(5, 2, dtype=F64), torch.rand(5, dtype=F64) + 0.3
    scaled: Any = scale_mvn(dist.MultivariateNormal(loc, cov), s)
    expected = gamma.log_prob(s) + scaled.log_prob(x)
    assert torch.allclose(g.log_density(x, s), expected)
    assert torch.allclose(g.event_logsumexp().logsumexp(), torch.zeros((), dtype=F64), atol=1e-10)


def test_matrix_and_mvn_is_the_scaled_conditional() -> None:
    matrix = torch.randn(2, 3, dtype=F64)
    noise = dist.MultivariateNormal(torch.randn(3, dtype=F64), torch.eye(3, dtype=F64) * 0.7)
    g = matrix_and_mvn_to_gamma_gaussian(matrix, noise)
    x, y, s = torch.randn(2, dtype=F64), torch.randn(3, dtype=F64), torch.tensor(1.7, dtype=F64)
    scaled: Any = scale_mvn(noise, s)
    expected = scaled.log_prob(y - x @ matrix)
    # The joint carries s^(y_dim / 2) from the scaled normalizer.
    assert torch.allclose(g.log_density(torch.cat([x, y]), s), expected)
    with pytest.raises(ValueError, match="MultivariateNormal of event shape"):
        matrix_and_mvn_to_gamma_gaussian(matrix, dist.Normal(torch.zeros(3), 1.0).to_event(1))


def test_condition_marginalize_and_tensordot_match_pyro() -> None:
    x, y = _random((3,), 3), _random((3,), 2)
    value = torch.randn(3, 1, dtype=F64)
    pairs = [
        (x.condition(value), _pyro(x).condition(value)),
        (x.marginalize(left=1), _pyro(x).marginalize(left=1)),
        (x.marginalize(right=2), _pyro(x).marginalize(right=2)),
        (gamma_gaussian_tensordot(x, y, 1), pyro_gamma_gaussian.gamma_gaussian_tensordot(_pyro(x), _pyro(y), 1)),
    ]
    for ours, theirs in pairs:
        for name in ("log_normalizer", "info_vec", "precision", "alpha", "beta"):
            assert torch.allclose(getattr(ours, name), getattr(theirs, name))
    ours_gamma, theirs_gamma = x.event_logsumexp(), _pyro(x).event_logsumexp()
    assert torch.allclose(ours_gamma.logsumexp(), theirs_gamma.logsumexp())


def test_sequential_tensordot_equals_pairwise_chaining() -> None:
    g = _random((2, 5), 4)
    chained = g[..., 0]
    for t in range(1, 5):
        chained = gamma_gaussian_tensordot(chained, g[..., t], dims=2)
    ours = sequential_gamma_gaussian_tensordot(g)
    for name in ("log_normalizer", "info_vec", "precision", "alpha", "beta"):
        assert torch.allclose(getattr(ours, name), getattr(chained, name))
    with pytest.raises(ValueError, match="not even"):
        sequential_gamma_gaussian_tensordot(_random((3,), 3))


def test_shape_methods() -> None:
    g = _random((1, 3), 2)
    assert g.expand((4, 3)).batch_shape == (4, 3)
    assert g.reshape((3,)).batch_shape == (3,)
    assert GammaGaussian.cat([g, g], dim=-1).batch_shape == (1, 6)
    assert g[:, :2].batch_shape == (1, 2)
    assert g.event_pad(left=1).dim() == 3
    assert torch.equal(g.event_permute(torch.tensor([1, 0])).precision[..., 0, 0], g.precision[..., 1, 1])


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_compound_integrates_out_the_scale_exactly_and_matches_pyro(dim: int) -> None:
    torch.manual_seed(dim)
    g = _random((4,), dim)
    student = g.compound()
    assert type(student) is dist.MultivariateStudentT
    assert student.batch_shape == (4,) and student.event_shape == (dim,)
    # The integral over s of exp(alpha log s - s c(x)) is Gamma(alpha + 1) c(x)^-(alpha + 1), with
    # c(x) = beta + x P x / 2 - x . info_vec: the Student-t density up to a constant in x.
    x = torch.randn(6, 4, dim, dtype=F64)
    c = g.beta + 0.5 * (x.unsqueeze(-2) @ g.precision @ x.unsqueeze(-1)).squeeze(-1).squeeze(-1) - (x * g.info_vec).sum(-1)
    integral = g.log_normalizer + torch.lgamma(g.alpha + 1) - (g.alpha + 1) * c.log()
    difference = student.log_prob(x) - integral
    torch.testing.assert_close(difference, difference[:1].expand_as(difference))
    theirs = _pyro(g).compound()
    torch.testing.assert_close(student.df, theirs.df)
    torch.testing.assert_close(student.loc, theirs.loc)
    torch.testing.assert_close(student.scale_tril, theirs.scale_tril)
    torch.testing.assert_close(student.log_prob(x), theirs.log_prob(x))
