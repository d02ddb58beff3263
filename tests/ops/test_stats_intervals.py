"""Quantiles, intervals and resampling of ``ember.ops.stats`` (in ``ember/ops/_stats_intervals.py``):
parity with pyro-ppl, exact answers, bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyro.ops.stats
import pytest
import torch

from ember.ops import stats

pyro_stats: Any = pyro.ops.stats  # pyro-ppl is not fully annotated

DTYPES = [torch.float32, torch.float64]
LAYOUTS = [((101,), 0), ((20, 3), 0), ((3, 40), -1), ((2, 33, 2), 1)]


def _assert_parity(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


def _exponential_grid(count: int) -> torch.Tensor:
    """Evenly spread quantiles of Exponential(1): a deterministic stand-in for its samples."""
    levels = (torch.arange(count, dtype=torch.float64) + 0.5) / count
    return -torch.log1p(-levels)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "dim"), LAYOUTS)
@pytest.mark.parametrize("probs", [0.5, [0.1, 0.5, 0.9], (0.0, 1.0), "tensor"])
def test_quantile_equals_pyro(
    probs: float | list[float] | tuple[float, ...] | str, shape: tuple[int, ...], dim: int, dtype: torch.dtype
) -> None:
    x = torch.randn(shape, dtype=dtype)
    levels = torch.tensor([0.25, 0.333, 0.975], dtype=dtype) if isinstance(probs, str) else probs
    _assert_parity(stats.quantile(x, levels, dim), pyro_stats.quantile(x, levels, dim))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "dim"), LAYOUTS)
def test_weighed_quantile_equals_pyro(shape: tuple[int, ...], dim: int, dtype: torch.dtype) -> None:
    x = torch.randn(shape, dtype=dtype)
    log_weights = torch.randn(shape[dim], dtype=dtype)
    for probs in ([0.0, 0.2, 0.5, 0.8, 1.0], torch.tensor([0.3, 0.7], dtype=dtype)):
        _assert_parity(
            stats.weighed_quantile(x, probs, log_weights, dim), pyro_stats.weighed_quantile(x, probs, log_weights, dim)
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "dim"), LAYOUTS)
@pytest.mark.parametrize("prob", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("name", ["pi", "hpdi"])
def test_intervals_equal_pyro(name: str, prob: float, shape: tuple[int, ...], dim: int, dtype: torch.dtype) -> None:
    x = torch.randn(shape, dtype=dtype).exp()  # skewed, so hpdi and pi differ
    _assert_parity(getattr(stats, name)(x, prob, dim), getattr(pyro_stats, name)(x, prob, dim))


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize(("shape", "dim", "num_samples"), [((10,), 0, 10), ((8, 3), 0, 5), ((2, 9), 1, 4)])
def test_resample_draws_what_pyro_draws_under_the_same_seed(
    shape: tuple[int, ...], dim: int, num_samples: int, replacement: bool
) -> None:
    x = torch.randn(shape)
    torch.manual_seed(3)
    ours = stats.resample(x, num_samples, dim, replacement)
    torch.manual_seed(3)
    assert torch.equal(ours, pyro_stats.resample(x, num_samples, dim, replacement))


def test_resample_without_replacement_is_a_permutation_of_distinct_entries() -> None:
    drawn = stats.resample(torch.arange(20.0), 12)
    assert torch.unique(drawn).numel() == 12 and bool(((drawn >= 0) & (drawn < 20)).all())


def test_resample_with_replacement_draws_integer_entries_uniformly() -> None:
    counts = torch.bincount(stats.resample(torch.arange(4), 40000, replacement=True), minlength=4).double()
    # Each count is Binomial(40000, 1/4): standard deviation about 87.
    assert bool(((counts - 10000).abs() < 4 * 87).all()), counts


def test_quantile_equals_numpys_linear_interpolation() -> None:
    x = torch.randn(7, 25, dtype=torch.float64)
    levels = [0.0, 0.01, 0.3, 0.5, 0.77, 1.0]
    expected = torch.from_numpy(np.quantile(x.numpy(), levels, axis=1).T)
    torch.testing.assert_close(stats.quantile(x, levels, dim=1), expected)
    assert stats.quantile(x, 0.3, dim=1).shape == (7,)


def test_weighed_quantile_with_equal_weights_interpolates_ranks() -> None:
    x = torch.tensor([3.0, 0.0, 1.0, 2.0])
    # Equal weights put the rescaled cumulative weights at 0, 1/3, 2/3, 1: linear in rank.
    result = stats.weighed_quantile(x, [0.0, 0.5, 1.0], torch.zeros(4))
    torch.testing.assert_close(result, torch.tensor([0.0, 1.5, 3.0]))
    torch.testing.assert_close(result, stats.quantile(x, [0.0, 0.5, 1.0]))


def test_weighed_quantile_matches_the_documented_example() -> None:
    x = torch.tensor([[10.0, 50.0, 40.0], [20.0, 30.0, 0.0]])
    result = stats.weighed_quantile(x, torch.tensor([0.2, 0.8]), torch.tensor([0.4, 0.5, 0.1]).log(), -1)
    torch.testing.assert_close(result, torch.tensor([[40.4, 47.6], [9.0, 26.4]]))


def test_hpdi_of_an_exponential_starts_at_zero_and_holds_prob() -> None:
    x = _exponential_grid(20000)
    low, high = stats.hpdi(x, 0.9).tolist()
    # The narrowest 90% interval of Exponential(1) is [0, log 10].
    assert low == pytest.approx(0.0, abs=1e-4)
    assert high == pytest.approx(math.log(10.0), abs=1e-3)
    low_pi, high_pi = stats.pi(x, 0.9).tolist()
    assert low_pi == pytest.approx(-math.log(0.95), abs=1e-3)
    assert high_pi == pytest.approx(-math.log(0.05), abs=1e-2)


def test_hpdi_of_a_symmetric_sample_is_the_central_interval() -> None:
    levels = (torch.arange(10001, dtype=torch.float64) + 0.5) / 10001
    x = 2.0 * torch.special.ndtri(levels)
    low, high = stats.hpdi(x, 0.8).tolist()
    z = 2.0 * torch.special.ndtri(torch.tensor(0.9, dtype=torch.float64)).item()
    assert low == pytest.approx(-z, abs=2e-3) and high == pytest.approx(z, abs=2e-3)


def test_hpdi_picks_the_narrowest_window_along_any_dim() -> None:
    x = torch.tensor([[9.0, 0.0], [0.1, 5.0], [0.2, 5.1], [8.0, 5.2], [0.3, 20.0]])
    # int(0.4 * 5) = 2 gaps: the columns' narrowest triples are {0.1, 0.2, 0.3} and {5.0, 5.1, 5.2}.
    torch.testing.assert_close(stats.hpdi(x, 0.4, dim=0), torch.tensor([[0.1, 5.0], [0.3, 5.2]]))
    torch.testing.assert_close(stats.hpdi(x.T, 0.4, dim=1), torch.tensor([[0.1, 0.3], [5.0, 5.2]]))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.quantile(torch.randn(10), [0.5, 1.5]), IndexError, r"\[0, 1\]"),
        (lambda m: m.quantile(torch.randn(10), torch.full((2, 2), 0.5)), IndexError, r"shape \(2, 2\)"),
        (lambda m: m.pi(torch.randn(10), 2.0), IndexError, r"\[0, 1\]"),
        (lambda m: m.hpdi(torch.randn(10), 1.0), IndexError, "prob=1.0 spans 10 of the 10 samples"),
        (lambda m: m.hpdi(torch.randn(0), 0.5), IndexError, "of the 0 samples"),
        (lambda m: m.weighed_quantile(torch.randn(10), [0.5], torch.zeros(5)), IndexError, r"shape \(5,\)"),
    ],
)
def test_bad_interval_input_raises_pyros_error_type(
    call: Callable[[object], object], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        call(stats)
    with pytest.raises(error):
        call(pyro_stats)


def test_quantile_and_hpdi_gradients_equal_pyros() -> None:
    x = torch.randn(25, 3, dtype=torch.float64, requires_grad=True)
    calls: list[Callable[[Any], torch.Tensor]] = [
        lambda m: m.quantile(x, [0.1, 0.62]),
        lambda m: m.hpdi(x, 0.8),
        lambda m: m.weighed_quantile(x, [0.3, 0.9], torch.linspace(-1, 1, 25, dtype=torch.float64)),
    ]
    for call in calls:
        (ours,) = torch.autograd.grad(call(stats).sum(), x)
        (theirs,) = torch.autograd.grad(call(pyro_stats).sum(), x)
        torch.testing.assert_close(ours, theirs)
