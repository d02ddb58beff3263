"""Chain diagnostics of ``ember.ops.stats``: parity with pyro-ppl, exact answers, bad input."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pyro.ops.stats
import pytest
import torch

from ember.ops import stats

pyro_stats: Any = pyro.ops.stats  # pyro-ppl is not fully annotated

DTYPES = [torch.float32, torch.float64]
# (shape, chain_dim, sample_dim): the chain and sample dims anywhere, negative dims included.
CHAIN_LAYOUTS = [
    ((4, 100), 0, 1),
    ((100, 3), 1, 0),
    ((2, 51, 3), 0, 1),
    ((40, 2, 3), -1, 0),
    ((5, 3, 2, 40), 1, -1),
    ((1, 64), 0, 1),
]


def _assert_parity(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


def _ar1(phi: float, num_chains: int, num_samples: int) -> torch.Tensor:
    """Stationary AR(1) chains ``x_t = phi x_{t-1} + e_t`` of unit innovation variance."""
    noise = torch.randn(num_chains, num_samples, dtype=torch.float64)
    x = torch.empty_like(noise)
    x[:, 0] = noise[:, 0] / (1 - phi**2) ** 0.5
    for t in range(1, num_samples):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def test_public_names_and_signatures_match_pyro() -> None:
    pyro_names = {
        name
        for name, value in vars(pyro_stats).items()
        if inspect.isfunction(value) and value.__module__ == pyro_stats.__name__ and not name.startswith("_")
    }
    assert pyro_names == set(stats.__all__)
    for name in pyro_names:
        ours, theirs = inspect.signature(getattr(stats, name)), inspect.signature(getattr(pyro_stats, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        assert [p.default for p in ours.parameters.values()] == [p.default for p in theirs.parameters.values()], name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("name", "shape", "chain_dim", "sample_dim"),
    [
        (name, *layout)
        for name in ["effective_sample_size", "split_gelman_rubin", "gelman_rubin"]
        for layout in CHAIN_LAYOUTS
        if name != "gelman_rubin" or layout[0][layout[1]] > 1  # gelman_rubin needs two chains
    ],
)
def test_chain_diagnostics_equal_pyro(
    name: str, shape: tuple[int, ...], chain_dim: int, sample_dim: int, dtype: torch.dtype
) -> None:
    x = torch.randn(shape, dtype=dtype).cumsum(sample_dim)  # autocorrelated, so the ESS is non-trivial
    ours = getattr(stats, name)(x, chain_dim=chain_dim, sample_dim=sample_dim)
    _assert_parity(ours, getattr(pyro_stats, name)(x, chain_dim=chain_dim, sample_dim=sample_dim))
    kept = [size for d, size in enumerate(shape) if d not in (chain_dim % len(shape), sample_dim % len(shape))]
    assert ours.shape == torch.Size(kept)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "dim"), [((7,), 0), ((50, 3), 0), ((3, 64), -1), ((2, 31, 2), 1)])
@pytest.mark.parametrize("name", ["autocorrelation", "autocovariance"])
def test_autocorrelation_and_autocovariance_equal_pyro(
    name: str, shape: tuple[int, ...], dim: int, dtype: torch.dtype
) -> None:
    x = torch.randn(shape, dtype=dtype)
    ours = getattr(stats, name)(x, dim=dim)
    assert ours.shape == x.shape
    _assert_parity(ours, getattr(pyro_stats, name)(x, dim=dim))


@pytest.mark.parametrize("length", [2, 7, 30, 97])
def test_autocorrelation_equals_brute_force_lagged_products(length: int) -> None:
    x = torch.randn(length, dtype=torch.float64)
    centered = x - x.mean()
    lagged = torch.stack([(centered[: length - k] * centered[k:]).mean() for k in range(length)])
    variance = centered.square().mean()
    torch.testing.assert_close(stats.autocorrelation(x), lagged / variance)
    torch.testing.assert_close(stats.autocovariance(x), lagged)


def test_autocorrelation_of_alternating_and_constant_sequences() -> None:
    alternating = torch.tensor([1.0, -1.0] * 8)
    expected = torch.tensor([1.0, -1.0] * 8)
    torch.testing.assert_close(stats.autocorrelation(alternating), expected)
    # A constant channel is perfectly correlated at every lag, next to a varying one.
    mixed = torch.stack([torch.full((10,), 3.0), torch.arange(10.0)], dim=-1)
    result = stats.autocorrelation(mixed, dim=0)
    assert torch.equal(result[:, 0], torch.ones(10))
    assert bool(result[0, 1] == 1) and bool((result[1:, 1] < 1).all())


def test_effective_sample_size_of_iid_draws_is_the_draw_count() -> None:
    # Over 200 seeds the estimator's standard deviation is about 5% of N: allow 4 of them.
    ess = stats.effective_sample_size(torch.randn(4, 1000, 2))
    assert ess.shape == (2,)
    assert bool(((ess - 4000).abs() < 800).all()), ess


def test_effective_sample_size_of_ar1_chains_is_n_over_the_integrated_autocorrelation_time() -> None:
    phi = 0.5
    ess = stats.effective_sample_size(_ar1(phi, num_chains=4, num_samples=2000))
    tau = (1 + phi) / (1 - phi)  # 1 + 2 * sum_k phi^k
    # The standard deviation over 200 seeds is about 5% of N / tau: allow 4 of them.
    assert abs(float(ess) - 8000 / tau) < 0.2 * 8000 / tau


def test_effective_sample_size_with_two_samples_uses_only_the_first_pair() -> None:
    x = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    # One pair: tau = -1 + 2 * (rho_0 + rho_1), from the pooled and within-chain variances.
    within = x.var(dim=1).mean()
    pooled = within / 2 + x.mean(dim=1).var()
    autocov_lag1 = torch.stack([(r - r.mean()).prod() for r in x]).mean()
    rho1 = (pooled - within + autocov_lag1) / pooled
    torch.testing.assert_close(stats.effective_sample_size(x), 4 / (-1 + 2 * (1 + rho1)))


def test_gelman_rubin_equals_the_textbook_formula() -> None:
    x = torch.randn(3, 20, dtype=torch.float64) + torch.tensor([[0.0], [0.5], [1.0]])
    n = x.size(1)
    within = x.var(dim=1).mean()
    between_over_n = x.mean(dim=1).var()
    expected = (((n - 1) / n * within + between_over_n) / within).sqrt()
    torch.testing.assert_close(stats.gelman_rubin(x), expected)


def test_split_gelman_rubin_is_gelman_rubin_of_the_half_chains() -> None:
    x = torch.randn(2, 41, dtype=torch.float64)  # odd: the middle sample is dropped
    halves = torch.cat([x[:, :20], x[:, -20:]])
    torch.testing.assert_close(stats.split_gelman_rubin(x), stats.gelman_rubin(halves))


def test_gelman_rubin_is_near_one_for_mixed_chains_and_large_for_separated_ones() -> None:
    # The standard deviation over 200 seeds of 4 x 1000 iid chains is 4e-4.
    assert abs(float(stats.gelman_rubin(torch.randn(4, 1000))) - 1) < 0.002
    assert float(stats.gelman_rubin(torch.randn(4, 1000) + torch.arange(4.0).unsqueeze(-1))) > 1.5
    trend = torch.linspace(-1, 1, 200).unsqueeze(0) + 0.1 * torch.randn(1, 200)
    assert float(stats.split_gelman_rubin(trend)) > 1.5



@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.effective_sample_size(torch.randn(10)), AssertionError, r"chain dim and a sample dim.*\(10,\)"),
        (lambda m: m.effective_sample_size(torch.randn(3, 1)), AssertionError, r"at least 2 samples.*\(3, 1\)"),
        (lambda m: m.effective_sample_size(torch.randn(3, 5), 1, -1), AssertionError, "same dim"),
        (lambda m: m.effective_sample_size(torch.randn(3, 5), 0, 2), IndexError, "sample_dim=2"),
        (lambda m: m.gelman_rubin(torch.randn(1, 5)), AssertionError, r"at least 2 chains.*\(1, 5\)"),
        (lambda m: m.gelman_rubin(torch.randn(3, 1)), AssertionError, "at least 2 samples"),
        (lambda m: m.split_gelman_rubin(torch.randn(2, 3)), AssertionError, r"at least 4 samples.*\(2, 3\)"),
        (lambda m: m.autocorrelation(torch.randn(0)), AssertionError, "empty"),
    ],
)
def test_bad_chain_input_raises_pyros_error_type(call: Callable[[object], object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(stats)
    with pytest.raises(error):
        call(pyro_stats)


def test_effective_sample_size_and_autocorrelation_gradients_equal_pyros() -> None:
    x = torch.randn(2, 30, 2, dtype=torch.float64).cumsum(1).requires_grad_()
    for name in ["effective_sample_size", "split_gelman_rubin"]:
        (ours,) = torch.autograd.grad(getattr(stats, name)(x).sum(), x)
        (theirs,) = torch.autograd.grad(getattr(pyro_stats, name)(x).sum(), x)
        torch.testing.assert_close(ours, theirs)
    weights = torch.randn(30, dtype=torch.float64)
    (ours,) = torch.autograd.grad((stats.autocorrelation(x, dim=1) * weights[:, None]).sum(), x)
    (theirs,) = torch.autograd.grad((pyro_stats.autocorrelation(x, dim=1) * weights[:, None]).sum(), x)
    torch.testing.assert_close(ours, theirs)
