"""Tests for BetaBinomial, DirichletMultinomial and GammaPoisson (conjugate.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import (
    assert_close,
    assert_fits_pmf,
    assert_log_prob_matches_pyro,
    assert_moments,
    assert_shapes_match_pyro,
    pyro_dist,
)

_C1 = torch.tensor([0.5, 2.0, 5.0])
_C0 = torch.tensor([1.5, 2.0, 0.7])
_N = torch.tensor([4.0, 10.0, 7.0])


def _counts(n: torch.Tensor, rows: int) -> torch.Tensor:
    return (torch.rand(rows, n.numel()) * (n + 1)).floor()


def test_beta_binomial_matches_pyro_exactly_and_approximately() -> None:
    value = _counts(_N, 6)
    d, p = dist.BetaBinomial(_C1, _C0, _N), pyro_dist.BetaBinomial(_C1, _C0, _N)
    assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert_shapes_match_pyro(d, p, (2, 3), value)

    class Approx(dist.BetaBinomial):
        approx_log_prob_tol = 0.1

    class PyroApprox(pyro_dist.BetaBinomial):  # type: ignore[misc]  # pyro is untyped
        approx_log_prob_tol = 0.1

    approx = Approx(_C1, _C0, _N).log_prob(value)
    assert_close(approx, PyroApprox(_C1, _C0, _N).log_prob(value))
    assert float((approx - d.log_prob(value)).abs().max()) < 3 * 0.1


def test_beta_binomial_pmf_sums_to_one_and_enumerates_like_pyro() -> None:
    d = dist.BetaBinomial(_C1, _C0, 6)
    support = d.enumerate_support()
    assert_close(support, pyro_dist.BetaBinomial(_C1, _C0, 6).enumerate_support())
    assert_close(d.log_prob(support).exp().sum(0), torch.ones(3))
    assert_close(d.enumerate_support(expand=False), support[:, :1])
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count"):
        dist.BetaBinomial(_C1, _C0, _N).enumerate_support()


def test_beta_binomial_samples_fit_the_pmf() -> None:
    d = dist.BetaBinomial(_C1, _C0, _N)
    samples = d.sample((4000,))
    assert bool(d.support.check(samples).all())
    assert_fits_pmf(samples, d.log_prob)
    assert_moments(samples, d.mean, d.variance)


def test_dirichlet_multinomial_matches_pyro_dense_and_sparse() -> None:
    concentration = torch.rand(2, 4) * 2 + 0.2
    value = torch.tensor([[1.0, 2.0, 0.0, 3.0], [0.0, 0.0, 6.0, 0.0]])
    for sparse in (False, True):
        d = dist.DirichletMultinomial(concentration, 6, is_sparse=sparse)
        p = pyro_dist.DirichletMultinomial(concentration, 6, is_sparse=sparse)
        assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert_shapes_match_pyro(d, p, (3, 2), value.unsqueeze(0))
    counts = torch.tensor([3.0, 6.0])
    d = dist.DirichletMultinomial(concentration, counts)
    p = pyro_dist.DirichletMultinomial(concentration, counts)
    assert d.batch_shape == p.batch_shape == (2,)
    assert dist.DirichletMultinomial.infer_shapes(concentration=(5, 4), total_count=(1,)) == (
        torch.Size([5]),
        torch.Size([4]),
    )


def test_dirichlet_multinomial_samples_have_the_stated_moments() -> None:
    concentration = torch.tensor([0.5, 1.0, 3.0])
    d = dist.DirichletMultinomial(concentration, 5)
    samples = d.sample((4000,))
    assert bool(d.support.check(samples).all()) and bool((samples.sum(-1) == 5).all())
    assert_moments(samples, d.mean, d.variance)
    with pytest.raises(NotImplementedError, match="Inhomogeneous"):
        dist.DirichletMultinomial(concentration.expand(2, 3), torch.tensor([2.0, 3.0])).sample()


def test_gamma_poisson_matches_pyro_and_negative_binomial() -> None:
    value = torch.tensor([[0.0, 3.0, 11.0], [1.0, 0.0, 40.0]])
    d, p = dist.GammaPoisson(_C1, _C0), pyro_dist.GammaPoisson(_C1, _C0)
    assert_log_prob_matches_pyro(d, p, value)
    nb = dist.NegativeBinomial(_C1, probs=1 / (1 + _C0))
    assert_close(d.log_prob(value), nb.log_prob(value))
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert_shapes_match_pyro(d, p, (4, 3), value)


def test_gamma_poisson_samples_fit_the_pmf_and_are_seeded_like_pyro() -> None:
    d = dist.GammaPoisson(_C1 * 4, _C0 + 1)
    torch.manual_seed(3)
    samples = d.sample((4000,))
    assert_fits_pmf(samples, d.log_prob)
    torch.manual_seed(3)
    assert_close(samples, pyro_dist.GammaPoisson(_C1 * 4, _C0 + 1).sample((4000,)))


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: dist.BetaBinomial(-_C1, _C0, _N), "concentration1"),
        (lambda: dist.BetaBinomial(_C1, _C0, _N - 4.5), "total_count"),
        (lambda: dist.GammaPoisson(_C1, -_C0), "rate"),
        (lambda: dist.DirichletMultinomial(-torch.ones(3), 2), "concentration"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(make: object, argument: str) -> None:
    with pytest.raises(ValueError, match=f"parameter {argument} "):
        make()  # type: ignore[operator]


def test_values_outside_support_raise() -> None:
    with pytest.raises(ValueError, match="support"):
        dist.GammaPoisson(_C1, _C0).log_prob(torch.tensor([-1.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="support"):
        dist.BetaBinomial(_C1, _C0, _N).log_prob(torch.tensor([5.0, 0.0, 0.0]))


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(ValueError, match="broadcastable"):
        dist.GammaPoisson(_C1, _C0).log_prob(torch.zeros(2))
