"""Tests for ember.ops.special (log Beta, log binomial, Bessel, quadrature, sparse multinomial)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.ops import special

# Pyro is an unannotated test oracle.
pyro_special: Any = importlib.import_module("pyro.ops.special")


@pytest.mark.parametrize("tol", [0.0, 0.02, 0.1, 0.5])
def test_log_beta_matches_pyro_and_stays_within_tol(tol: float) -> None:
    x = torch.rand(50, dtype=torch.float64) * 20 + 0.01
    y = torch.rand(50, dtype=torch.float64) * 20 + 0.01
    result = special.log_beta(x, y, tol)
    torch.testing.assert_close(result, pyro_special.log_beta(x, y, tol))
    exact = x.lgamma() + y.lgamma() - (x + y).lgamma()
    assert float((result - exact).abs().max()) <= max(tol, 1e-12)


def test_log_beta_rejects_negative_tol() -> None:
    with pytest.raises(ValueError, match="tol >= 0"):
        special.log_beta(torch.ones(1), torch.ones(1), -0.1)


@pytest.mark.parametrize("tol", [0.0, 0.05])
def test_log_binomial_matches_pyro_and_exact_counts(tol: float) -> None:
    n = torch.tensor([0.0, 5.0, 10.0, 40.0], dtype=torch.float64)
    k = torch.tensor([0.0, 2.0, 10.0, 17.0], dtype=torch.float64)
    result = special.log_binomial(n, k, tol)
    torch.testing.assert_close(result, pyro_special.log_binomial(n, k, tol))
    exact = torch.tensor([math.log(math.comb(int(a), int(b))) for a, b in zip(n, k)], dtype=torch.float64)
    assert float((result - exact).abs().max()) <= max(tol, 1e-9)
    assert not special.log_binomial(n.requires_grad_(), k).requires_grad


def test_log_i1_matches_pyro_and_known_values() -> None:
    value = torch.rand(7, dtype=torch.float64) * 10 + 0.1
    result = special.log_I1(4, value)
    assert result.shape == (5, 7)
    torch.testing.assert_close(result, pyro_special.log_I1(4, value))
    # I_0(1) and I_1(1), from their series.
    i0 = sum(0.25**k / math.factorial(k) ** 2 for k in range(30))
    i1 = sum(0.5 ** (2 * k + 1) / (math.factorial(k) * math.factorial(k + 1)) for k in range(30))
    at_one = special.log_I1(1, torch.tensor(1.0, dtype=torch.float64))
    assert at_one.shape == (2, 1)
    torch.testing.assert_close(at_one.exp().squeeze(-1), torch.tensor([i0, i1], dtype=torch.float64))


def test_quadrature_rule_matches_pyro_and_integrates_polynomials_exactly() -> None:
    points, log_weights = special.get_quad_rule(10, torch.tensor(0.0, dtype=torch.float64))
    pyro_points, pyro_log_weights = pyro_special.get_quad_rule(10, torch.tensor(0.0, dtype=torch.float64))
    torch.testing.assert_close(points, pyro_points)
    torch.testing.assert_close(log_weights, pyro_log_weights)
    weights = log_weights.exp()
    # Standard normal moments 1, 0, 1, 0, 3, 0, 15 for degrees up to 19.
    for degree, moment in enumerate([1.0, 0.0, 1.0, 0.0, 3.0, 0.0, 15.0]):
        assert abs(float((weights * points**degree).sum()) - moment) < 1e-9
    assert special.get_quad_rule(4, torch.tensor(0.0))[0].dtype == torch.float32


def test_sparse_multinomial_likelihood_equals_the_dense_multinomial() -> None:
    logits = torch.randn(3, 5)
    value = torch.tensor([[0.0, 2.0, 0.0, 1.0, 0.0], [3.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 5.0, 0.0, 0.0]])
    dense = dist.Multinomial(logits=logits, total_count=5, validate_args=False).log_prob(value).sum()
    nonzero = value.nonzero(as_tuple=True)
    normalized = logits - logits.logsumexp(-1, keepdim=True)
    args = (value.sum(-1), normalized[nonzero], value[nonzero])
    torch.testing.assert_close(special.sparse_multinomial_likelihood(*args), dense)
    torch.testing.assert_close(special.sparse_multinomial_likelihood(*args), pyro_special.sparse_multinomial_likelihood(*args))
    # Repeated calls hit the per-tensor cache and give the same value.
    torch.testing.assert_close(special.sparse_multinomial_likelihood(*args), dense)


def test_safe_log_has_finite_gradients_at_zero() -> None:
    x = torch.tensor([0.0, 1e-30, 2.0], requires_grad=True)
    result = special.safe_log(x)
    torch.testing.assert_close(result.detach(), x.detach().log())
    torch.autograd.backward(result.sum())
    assert x.grad is not None and bool(x.grad.isfinite().all())
    assert float(x.grad[2]) == 0.5
