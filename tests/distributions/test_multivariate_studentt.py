"""Tests for MultivariateStudentT (multivariate_studentt.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def _params(batch: tuple[int, ...] = (4,), size: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    df = torch.rand(batch) * 6 + 0.5
    loc = torch.randn(batch + (size,))
    a = torch.randn(size, size)
    scale_tril = torch.linalg.cholesky(a @ a.T + torch.eye(size))
    return df, loc, scale_tril


def test_log_prob_matches_pyro_on_random_values() -> None:
    df, loc, scale_tril = _params()
    value = torch.randn(5, 4, 3) * 3
    ours = dist.MultivariateStudentT(df, loc, scale_tril).log_prob(value)
    theirs = pyro_dist.MultivariateStudentT(df, loc, scale_tril).log_prob(value)
    assert ours.shape == (5, 4)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_log_prob_reduces_to_univariate_student_t() -> None:
    df, loc, scale = torch.tensor(4.0), torch.tensor([0.5]), torch.tensor([[2.0]])
    value = torch.linspace(-5, 5, 11).unsqueeze(-1)
    expected = dist.StudentT(df, 0.5, 2.0).log_prob(value.squeeze(-1))
    assert torch.allclose(dist.MultivariateStudentT(df, loc, scale).log_prob(value), expected, atol=1e-5)


def test_moments_of_samples_within_monte_carlo_error() -> None:
    df, loc, scale_tril = torch.tensor(8.0), torch.tensor([1.0, -2.0]), torch.tensor([[1.0, 0.0], [0.5, 2.0]])
    d = dist.MultivariateStudentT(df, loc, scale_tril)
    x = d.rsample((40000,))
    covariance = scale_tril @ scale_tril.T * df / (df - 2)
    std_error = covariance.diagonal().sqrt() / math.sqrt(40000)
    assert ((x.mean(0) - loc).abs() < 5 * std_error).all()
    assert torch.allclose(torch.cov(x.T), covariance, rtol=0.1)
    assert torch.allclose(d.variance, covariance.diagonal())


def test_rsample_gradients_match_finite_differences_in_loc_and_scale() -> None:
    df = torch.tensor(5.0, dtype=torch.float64)
    loc = torch.tensor([0.3, -0.1], dtype=torch.float64, requires_grad=True)
    scale_tril = torch.tensor([[1.0, 0.0], [0.4, 0.8]], dtype=torch.float64, requires_grad=True)

    def objective(loc_value: torch.Tensor, tril_value: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(1)
        return dist.MultivariateStudentT(df, loc_value, tril_value).rsample((50,)).pow(3).sum()

    grad_loc, grad_tril = torch.autograd.grad(objective(loc, scale_tril), [loc, scale_tril])
    eps = 1e-6
    for i in range(2):
        shift = torch.zeros(2, dtype=torch.float64)
        shift[i] = eps
        numeric = (objective(loc + shift, scale_tril) - objective(loc - shift, scale_tril)) / (2 * eps)
        assert torch.allclose(grad_loc[i], numeric, rtol=1e-5)
    bump = torch.zeros(2, 2, dtype=torch.float64)
    bump[1, 0] = eps
    numeric = (objective(loc, scale_tril + bump) - objective(loc, scale_tril - bump)) / (2 * eps)
    assert torch.allclose(grad_tril[1, 0], numeric, rtol=1e-5)


def test_df_gradient_is_unbiased() -> None:
    # E|x - loc|^2 = tr(S) df / (df - 2), so its df-derivative is -2 tr(S) / (df - 2)^2.
    df = torch.tensor(6.0, requires_grad=True)
    d = dist.MultivariateStudentT(df, torch.zeros(2), torch.eye(2))
    x = d.rsample((100000,))
    per_sample = x.square().sum(-1)
    (grad,) = torch.autograd.grad(per_sample.mean(), [df])
    expected = -2 * 2 / (6.0 - 2) ** 2
    assert torch.isfinite(grad)
    assert abs(float(grad) - expected) < 0.05


def test_shapes_expand_and_infer_shapes_match_pyro() -> None:
    df, loc, scale_tril = _params((1,), 3)
    d = dist.MultivariateStudentT(df, loc, scale_tril)
    e = d.expand((2, 5))
    assert (e.batch_shape, e.event_shape) == ((2, 5), (3,))
    assert e.rsample((7,)).shape == (7, 2, 5, 3)
    assert e.covariance_matrix.shape == (2, 5, 3, 3)
    theirs = pyro_dist.MultivariateStudentT(df, loc, scale_tril).expand((2, 5))
    assert e.log_prob(torch.zeros(3)).shape == theirs.log_prob(torch.zeros(3)).shape
    assert dist.MultivariateStudentT.infer_shapes(df=(2, 1), loc=(5, 3), scale_tril=(3, 3)) == ((2, 5), (3,))


def test_mean_is_nan_and_variance_infinite_where_undefined() -> None:
    d = dist.MultivariateStudentT(torch.tensor([0.5, 1.5, 3.0]), torch.zeros(3, 2), torch.eye(2))
    assert torch.isnan(d.mean[0]).all() and not torch.isnan(d.mean[1:]).any()
    assert torch.isnan(d.variance[0]).all() and torch.isinf(d.variance[1]).all()
    assert torch.allclose(d.variance[2], torch.full((2,), 3.0))


def test_bad_scale_tril_shape_names_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"MultivariateStudentT.*scale_tril.*\(2, 2\)"):
        dist.MultivariateStudentT(1.0, torch.zeros(3), torch.eye(2))


def test_negative_df_is_rejected_by_validation() -> None:
    with pytest.raises(ValueError, match="df"):
        dist.MultivariateStudentT(torch.tensor(-1.0), torch.zeros(2), torch.eye(2))
