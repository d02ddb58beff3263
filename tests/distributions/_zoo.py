"""Checks shared by the tests of Pyro's extra distributions (parity, fit, gradients, shapes).

Statistical thresholds are derived from the sample size: Kolmogorov-Smirnov bounds from the
DKW inequality, chi-square bounds from the statistic's mean and standard deviation, and
moment bounds from the standard error; each holds with probability well above 0.999, and
the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")

# Failure probability allowed for one statistical check.
_ALPHA = 1e-4


def in_support(d: Any, value: torch.Tensor) -> bool:
    """Whether every entry of ``value`` lies in ``d.support``."""
    result: torch.Tensor = d.support.check(value)
    return bool(result.all())


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> None:
    """Same shape and values within ``atol`` (infinities must agree, NaNs must coincide)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected.to(actual.dtype), atol=atol, rtol=0, equal_nan=True), (
        (actual - expected).abs().max()
    )


def assert_log_prob_matches_pyro(ember_d: Any, pyro_d: Any, value: torch.Tensor) -> None:
    """``log_prob`` agrees with pyro-ppl's on ``value``, including the shape."""
    assert_close(ember_d.log_prob(value), pyro_d.log_prob(value))


def assert_shapes_match_pyro(
    ember_d: Any, pyro_d: Any, batch_shape: Sequence[int], value: torch.Tensor | None = None
) -> None:
    """Batch/event shapes, ``expand`` shapes, and expanded ``log_prob`` agree with Pyro's.

    ``value`` has a leading sample dimension; its first entry is scored after expanding.
    """
    assert ember_d.batch_shape == pyro_d.batch_shape
    assert ember_d.event_shape == pyro_d.event_shape
    expanded, pyro_expanded = ember_d.expand(batch_shape), pyro_d.expand(batch_shape)
    assert expanded.batch_shape == pyro_expanded.batch_shape == torch.Size(batch_shape)
    assert expanded.event_shape == pyro_expanded.event_shape
    assert type(ember_d).__name__ == type(pyro_d).__name__
    if value is not None:
        assert_close(expanded.log_prob(value[0]), pyro_expanded.log_prob(value[0]))


def ks_bound(n: int, tests: int = 1) -> float:
    """The DKW bound on ``sup |F_n - F|`` holding with probability ``1 - alpha`` over ``tests``."""
    return math.sqrt(math.log(2 * tests / _ALPHA) / (2 * n))


def assert_fits_cdf(samples: torch.Tensor, cdf: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Kolmogorov-Smirnov check of ``samples`` (``n x batch``) against the CDF ``cdf``."""
    n = samples.shape[0]
    flat = samples.reshape(n, -1)
    ordered, _ = flat.sort(0)
    values = cdf(ordered.reshape((n,) + samples.shape[1:])).reshape(n, -1)
    ranks = torch.arange(1, n + 1, dtype=values.dtype).unsqueeze(-1)
    statistic = torch.maximum(ranks / n - values, values - (ranks - 1) / n).max()
    assert float(statistic) < ks_bound(n, flat.shape[1]), float(statistic)


def numeric_cdf(
    log_prob: Callable[[torch.Tensor], torch.Tensor], low: float, high: float, points: int = 20001
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A CDF from a univariate (batched) density by the trapezoid rule on ``[low, high]``.

    ``log_prob`` maps a ``(points, 1, ..., 1)`` grid to ``(points,) + batch_shape`` densities.
    """

    def cdf(values: torch.Tensor) -> torch.Tensor:
        grid = torch.linspace(low, high, points, dtype=torch.float64)
        shape = (points,) + (1,) * (values.dim() - 1)
        density = log_prob(grid.reshape(shape)).double().exp()
        steps = (density[1:] + density[:-1]) / 2 * (grid[1] - grid[0])
        cumulative = torch.cat([torch.zeros_like(density[:1]), steps.cumsum(0)])
        flat_cum = cumulative.reshape(points, -1)
        flat_values = values.double().reshape(values.shape[0], -1)
        index = torch.searchsorted(grid, flat_values.clamp(low, high).T.contiguous()).T
        index = index.clamp(1, points - 1)
        left, right = grid[index - 1], grid[index]
        weight = (flat_values.clamp(low, high) - left) / (right - left)
        columns = torch.arange(flat_cum.shape[1]).expand_as(index)
        result = flat_cum[index - 1, columns] * (1 - weight) + flat_cum[index, columns] * weight
        return result.reshape(values.shape)

    return cdf


@contextmanager
def _no_validation() -> Iterator[None]:
    previous = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(previous)


def assert_fits_pmf(samples: torch.Tensor, log_prob: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Pearson chi-square check of integer ``samples`` (``n x batch``) against ``log_prob``.

    Categories with expected counts below 5 are pooled into one "rest" bin per batch element.
    """
    n = samples.shape[0]
    flat = samples.reshape(n, -1)
    top = int(flat.max()) + 1
    support = torch.arange(top, dtype=samples.dtype).reshape((top,) + (1,) * (samples.dim() - 1))
    with _no_validation():
        log_probs = log_prob(support).double()
    log_probs = torch.where(log_probs.isnan(), -math.inf, log_probs)  # outside the support
    expected = log_probs.exp().reshape(top, -1) * n  # (top, batch)
    observed = torch.stack([(flat == k).sum(0) for k in range(top)]).double()
    keep = expected >= 5
    rest_expected = n - (expected * keep).sum(0)
    rest_observed = n - (observed * keep).sum(0)
    statistic = ((observed - expected) ** 2 / expected)[keep].sum()
    pooled = rest_expected > 1e-9
    statistic = statistic + ((rest_observed - rest_expected) ** 2 / rest_expected)[pooled].sum()
    df = int(keep.sum()) + int(pooled.sum()) - flat.shape[1]
    # chi2(df) has mean df and sd sqrt(2 df); 5 sd above covers alpha for df >= 10.
    assert float(statistic) < df + 5 * math.sqrt(2 * max(df, 1)) + 10, (float(statistic), df)


def assert_moments(
    samples: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, z: float = 5.0
) -> None:
    """Sample mean within ``z`` standard errors of ``mean`` (``samples`` is ``n x ...``)."""
    n = samples.shape[0]
    error = (samples.double().mean(0) - mean.double()).abs()
    assert bool((error <= z * (variance.double() / n).sqrt() + 1e-12).all()), (error, variance)


def assert_rsample_grads_match_finite_differences(
    make: Callable[..., Any], params: Sequence[torch.Tensor], sample_shape: Sequence[int] = (4,)
) -> None:
    """``rsample`` gradients, with the draw's seed fixed, equal central finite differences.

    ``make(*params)`` builds the distribution; parameters are float64.
    """
    params = [p.detach().double().requires_grad_() for p in params]

    def draw(*values: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(123)
        result: torch.Tensor = make(*values).rsample(sample_shape)
        return result

    out = draw(*params)
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape)
    grads = torch.autograd.grad((out * weights).sum(), params)
    eps = 1e-6
    for param, grad in zip(params, grads):
        assert bool(grad.isfinite().all())
        flat = param.detach().clone().reshape(-1)
        for i in range(flat.numel()):
            plus, minus = flat.clone(), flat.clone()
            plus[i] += eps
            minus[i] -= eps
            values_plus = [plus.reshape(param.shape) if p is param else p.detach() for p in params]
            values_minus = [minus.reshape(param.shape) if p is param else p.detach() for p in params]
            with torch.no_grad():
                numeric = ((draw(*values_plus) - draw(*values_minus)) * weights).sum() / (2 * eps)
            assert abs(float(numeric) - float(grad.reshape(-1)[i])) < 1e-4 * (1 + abs(float(numeric)))


def pyro_stable_integrator() -> Callable[..., torch.Tensor]:
    """Pyro's Gauss-Legendre integrator rebuilt on numpy's nodes (pyro-ppl imports them from
    scipy, which the test environment lacks); the nodes are the same to float64 rounding."""
    import numpy as np

    nodes, weights = np.polynomial.legendre.leggauss(501)
    half = torch.as_tensor(nodes, dtype=torch.float64) * 0.5
    log_weights = torch.as_tensor(np.log(weights), dtype=torch.float64)

    def integrate(fn: Callable[[torch.Tensor], torch.Tensor], domain: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (domain.dim() - 1)
        points = domain[0] * (0.5 - half.reshape(shape)) + domain[1] * (0.5 + half.reshape(shape))
        integral = torch.logsumexp(fn(points) + log_weights.reshape(shape), dim=0)
        return integral + ((domain[1] - domain[0]) / 2).log()

    return integrate
