"""Scores and the generalized Pareto fit of ``ember.ops.stats`` (in ``ember/ops/_stats_scores.py``):
parity with pyro-ppl, exact answers, bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pyro.ops.stats
import pytest
import torch

from ember.ops import stats

pyro_stats: Any = pyro.ops.stats  # pyro-ppl is not fully annotated

DTYPES = [torch.float32, torch.float64]


def _assert_parity(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


def _generalized_pareto(k: float, sigma: float, count: int) -> torch.Tensor:
    """Draws of a generalized Pareto distribution by inverting its CDF."""
    u = torch.rand(count, dtype=torch.float64)
    return sigma * (u.pow(-k) - 1) / k


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pointwise", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("shape", "dim"), [((50,), 0), ((50, 4), 0), ((3, 40), 1), ((2, 30, 3), -2)])
def test_waic_equals_pyro(shape: tuple[int, ...], dim: int, weighted: bool, pointwise: bool, dtype: torch.dtype) -> None:
    log_lik = torch.randn(shape, dtype=dtype) - 2.0
    log_weights = torch.randn(shape[dim], dtype=dtype) if weighted else None
    ours = stats.waic(log_lik, log_weights, pointwise, dim)
    theirs = pyro_stats.waic(log_lik, log_weights, pointwise, dim)
    for mine, expected in zip(ours, theirs):
        _assert_parity(mine, expected)


def test_waic_equals_the_weighted_textbook_formula() -> None:
    log_lik = torch.randn(40, 3, dtype=torch.float64)
    log_weights = torch.randn(40, dtype=torch.float64)
    w = (log_weights - log_weights.logsumexp(0)).exp().unsqueeze(-1)
    lpd = (w * log_lik.exp()).sum(0).log()
    mean = (w * log_lik).sum(0)
    p_waic = (w * (log_lik - mean).square()).sum(0) * 40 / 39
    criterion, penalty = stats.waic(log_lik, log_weights, pointwise=True)
    torch.testing.assert_close(penalty, p_waic)
    torch.testing.assert_close(criterion, -2 * (lpd - p_waic))
    total, total_penalty = stats.waic(log_lik, log_weights)
    torch.testing.assert_close(total, criterion.sum())
    torch.testing.assert_close(total_penalty, p_waic.sum())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("pred_shape", "truth_shape"), [((1, 3), (3,)), ((20,), ()), ((20, 3), (3,)), ((15, 2, 3), (2, 3)), ((9, 1, 4), (4,))]
)
def test_crps_empirical_equals_pyro_and_the_quadratic_formula(
    pred_shape: tuple[int, ...], truth_shape: tuple[int, ...], dtype: torch.dtype
) -> None:
    pred, truth = torch.randn(pred_shape, dtype=dtype), torch.randn(truth_shape, dtype=dtype)
    ours = stats.crps_empirical(pred, truth)
    _assert_parity(ours, pyro_stats.crps_empirical(pred, truth))
    quadratic = (pred - truth).abs().mean(0) - (pred - pred.unsqueeze(1)).abs().mean([0, 1]) / 2
    torch.testing.assert_close(ours, quadratic, rtol=1e-5, atol=1e-5)


def test_crps_of_a_normal_forecast_matches_the_closed_form() -> None:
    # CRPS(N(0, 1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1 / sqrt(pi); evenly spread quantiles
    # of N(0, 1) stand in for its samples.
    levels = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000
    pred = torch.special.ndtri(levels)
    y = torch.tensor([0.0, 0.7, -2.0], dtype=torch.float64)
    cdf, pdf = torch.special.ndtr(y), (-y.square() / 2).exp() / math.sqrt(2 * math.pi)
    expected = y * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi)
    torch.testing.assert_close(stats.crps_empirical(pred.unsqueeze(-1).expand(-1, 3), y), expected, rtol=0, atol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pred_batch_size", [None, 1, 7, 50])
@pytest.mark.parametrize(
    ("pred_shape", "truth_shape"), [((30, 3), (3,)), ((30, 2), (4, 2)), ((5, 30, 3), (5, 3)), ((2, 30, 1), (2, 6, 1))]
)
def test_energy_score_empirical_equals_pyro(
    pred_shape: tuple[int, ...], truth_shape: tuple[int, ...], pred_batch_size: int | None, dtype: torch.dtype
) -> None:
    pred, truth = torch.randn(pred_shape, dtype=dtype), torch.randn(truth_shape, dtype=dtype)
    ours = stats.energy_score_empirical(pred, truth, pred_batch_size)
    _assert_parity(ours, pyro_stats.energy_score_empirical(pred, truth, pred_batch_size))
    _assert_parity(ours, stats.energy_score_empirical(pred, truth))


def test_energy_score_equals_the_quadratic_formula_and_crps_in_one_dim() -> None:
    pred, truth = torch.randn(25, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    to_truth = (pred - truth).norm(dim=-1).mean()
    spread = (pred.unsqueeze(0) - pred.unsqueeze(1)).norm(dim=-1).mean()
    torch.testing.assert_close(stats.energy_score_empirical(pred, truth), to_truth - spread / 2)
    scalar_pred, scalar_truth = torch.randn(25, 1, dtype=torch.float64), torch.randn(1, dtype=torch.float64)
    torch.testing.assert_close(
        stats.energy_score_empirical(scalar_pred, scalar_truth), stats.crps_empirical(scalar_pred, scalar_truth)[0]
    )


def test_energy_score_accepts_a_custom_distance() -> None:
    pred, truth = torch.randn(10, 2), torch.randn(2)
    calls: list[tuple[int, ...]] = []

    def manhattan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(a.shape))
        return torch.cdist(a, b, p=1.0)

    expected = (pred - truth).abs().sum(-1).mean() - (pred - pred.unsqueeze(1)).abs().sum(-1).mean() / 2
    torch.testing.assert_close(stats.energy_score_empirical(pred, truth, cdist=manhattan), expected)
    assert calls == [(10, 2), (10, 2)]


@pytest.mark.parametrize("size", [20, 100, 1000])
@pytest.mark.parametrize("k", [-0.3, 0.2, 0.8])
def test_fit_generalized_pareto_equals_pyro(k: float, size: int) -> None:
    x = _generalized_pareto(k, 1.5, size).float()
    ours, theirs = stats.fit_generalized_pareto(x), pyro_stats.fit_generalized_pareto(x)
    assert isinstance(ours[0], float) and isinstance(ours[1], float)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("k", "sigma"), [(0.5, 1.0), (0.2, 3.0), (-0.2, 0.5)])
def test_fit_generalized_pareto_recovers_the_parameters(k: float, sigma: float) -> None:
    # With 20,000 draws the estimators' sampling errors are about 0.01 (k) and 1% (sigma).
    fit_k, fit_sigma = stats.fit_generalized_pareto(_generalized_pareto(k, sigma, 20000))
    assert fit_k == pytest.approx(k, abs=0.05)
    assert fit_sigma == pytest.approx(sigma, rel=0.05)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.fit_generalized_pareto(torch.rand(3, 4)), ValueError, r"1-dimensional.*\(3, 4\)"),
        (lambda m: m.fit_generalized_pareto([1.0, 2.0]), ValueError, "1-dimensional.*list"),
        (lambda m: m.crps_empirical(torch.randn(5, 3), torch.randn(4)), ValueError, "one extra sample dim"),
        (lambda m: m.energy_score_empirical(torch.randn(5, 5, 3), torch.randn(3)), ValueError, "at most one extra"),
        (lambda m: m.waic(torch.randn(10, 3), torch.zeros(4)), RuntimeError, r"shape \(4,\).*\(10, 3\)"),
    ],
)
def test_bad_score_input_raises_pyros_error_type(call: Callable[[object], object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(stats)
    with pytest.raises(error):
        call(pyro_stats)


@pytest.mark.parametrize("name", ["crps_empirical", "energy_score_empirical", "waic"])
def test_score_gradients_equal_pyros(name: str) -> None:
    # The scores serve as training losses (e.g. CRPS for forecasting): their gradients matter.
    pred = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    truth = torch.randn(3, dtype=torch.float64)

    def loss(module: Any) -> torch.Tensor:
        if name == "waic":
            criterion: torch.Tensor = module.waic(pred, pointwise=True)[0]
            return criterion.sum()
        result: torch.Tensor = getattr(module, name)(pred, truth)
        return result.sum()

    (ours,) = torch.autograd.grad(loss(stats), pred)
    (theirs,) = torch.autograd.grad(loss(pyro_stats), pred)
    torch.testing.assert_close(ours, theirs)
