"""Special functions the distributions need, at Pyro's ``pyro.ops.special`` path.

Log Beta and log binomial coefficients (exact, or a cheap shifted Stirling approximation),
log modified Bessel functions of the first kind, Gauss-Hermite quadrature rules, a sparse
multinomial likelihood, and a logarithm whose gradient stays finite at zero.

>>> log_beta(torch.tensor(2.0), torch.tensor(3.0)).exp()
tensor(0.0833)
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch
from numpy.polynomial.hermite import hermgauss

__all__ = [
    "get_quad_rule",
    "log_I1",
    "log_beta",
    "log_binomial",
    "safe_log",
    "sparse_multinomial_likelihood",
]

# Stirling's series for lgamma has absolute error below this constant over z >= 1 after one
# shift; n shifts bring it under 0.082 / n, which is how ``tol`` picks the number of shifts.
_STIRLING_ERROR = 0.082
_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


class _SafeLog(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.log()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]  # torch: set by save_for_backward
        denominator: torch.Tensor = x.clamp(min=torch.finfo(x.dtype).eps)
        return grad / denominator


def safe_log(x: torch.Tensor) -> torch.Tensor:
    """The natural logarithm, with gradients clamped to at most ``1 / eps`` near zero.

    :param x: a nonnegative tensor.

    >>> x = torch.tensor(0.0, requires_grad=True)
    >>> safe_log(x).backward()
    >>> bool(x.grad.isfinite())
    True
    """
    result: torch.Tensor = _SafeLog.apply(x)  # type: ignore[no-untyped-call]  # torch: unannotated
    return result


def log_beta(x: torch.Tensor, y: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """The log Beta function ``lgamma(x) + lgamma(y) - lgamma(x + y)``.

    With ``tol >= 0.02`` this uses Stirling's approximation of ``lgamma`` after shifting both
    arguments up by ``n = ceil(0.082 / tol)`` with ``lgamma(z) = lgamma(z + 1) - log(z)``, so
    the absolute error stays below ``tol`` and no ``lgamma`` is evaluated.

    :param x: a positive tensor.
    :param y: a positive tensor.
    :param tol: bound on the absolute error; below 0.02 the result is exact.
    :raises ValueError: if ``tol`` is negative.

    >>> a, b = torch.tensor(0.5), torch.tensor(4.0)
    >>> bool((log_beta(a, b, tol=0.1) - log_beta(a, b)).abs() < 0.1)
    True
    """
    if tol < 0:
        raise ValueError(f"log_beta: expected tol >= 0, got {tol}")
    if tol < 0.02:
        return x.lgamma() + y.lgamma() - (x + y).lgamma()
    shifts = int(math.ceil(_STIRLING_ERROR / tol))
    xy = x + y
    # The shifts' factors (x + y + i) / ((x + i) (y + i)) are multiplied before one log.
    factor = xy / (x * y)
    for i in range(1, shifts):
        factor = factor * ((xy + i) / ((x + i) * (y + i)))
    x, y, xy = x + shifts, y + shifts, xy + shifts
    stirling = (x - 0.5) * x.log() + (y - 0.5) * y.log() - (xy - 0.5) * xy.log()
    return factor.log() + stirling + (_HALF_LOG_TWO_PI - shifts)


def log_binomial(n: torch.Tensor, k: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """The log binomial coefficient ``log(n choose k)``, without gradients.

    :param n: a nonnegative integer-valued tensor.
    :param k: an integer-valued tensor in ``[0, n]``.
    :param tol: bound on the absolute error, as for :func:`log_beta`.

    >>> log_binomial(torch.tensor(5.0), torch.tensor(2.0)).exp().round()
    tensor(10.)
    """
    with torch.no_grad():
        n_plus_1 = n + 1
        if tol < 0.02:
            return n_plus_1.lgamma() - (k + 1).lgamma() - (n_plus_1 - k).lgamma()
        return -n_plus_1.log() - log_beta(k + 1, n_plus_1 - k, tol=tol)


def log_I1(orders: int, value: torch.Tensor, terms: int = 250) -> torch.Tensor:
    """Log modified Bessel functions of the first kind, ``log I_v(value)`` for ``v = 0..orders``.

    Sums the series ``I_v(z) = sum_k (z/2)^(2k+v) / (k! Gamma(v+k+1))`` in log space,
    truncated after ``terms`` terms.

    :param orders: the highest order; the result has ``orders + 1`` rows.
    :param value: positive arguments.
    :param terms: how many series terms to sum.
    :returns: a tensor of shape ``(orders + 1,) + value.shape`` (a scalar counts as ``(1,)``).

    >>> log_I1(0, torch.tensor([1.0])).exp()
    tensor([[1.2661]])
    """
    count = orders + 1
    shape = value.shape if value.dim() else torch.Size([1])
    flat = value.reshape(-1, 1)
    k = torch.arange(terms, device=value.device, dtype=value.dtype)
    log_half = torch.log(flat / 2)  # (n, 1)
    log_k_factorial = torch.lgamma(k + 1)  # (terms,)
    v = torch.arange(count, device=value.device, dtype=value.dtype).unsqueeze(-1)  # (count, 1)
    log_gamma_v_k = torch.lgamma(v + k + 1)  # (count, terms)
    series = 2 * k * log_half.unsqueeze(0) - log_k_factorial - log_gamma_v_k.unsqueeze(1)
    result = v * log_half.squeeze(-1) + series.logsumexp(-1)  # (count, n)
    return result.reshape((count,) + tuple(shape))


def get_quad_rule(
    num_quad: int, prototype_tensor: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Hermite points and log weights for expectations under a standard normal.

    ``E f(X) ~= sum_i exp(log_weights[i]) f(points[i])`` for ``X ~ Normal(0, 1)``.

    :param num_quad: the number of quadrature points.
    :param prototype_tensor: gives the dtype and device of the results.
    :returns: ``(points, log_weights)``, each of shape ``(num_quad,)``.

    >>> points, log_weights = get_quad_rule(8, torch.tensor(0.0))
    >>> float((log_weights.exp() * points**2).sum())
    1.0
    """
    nodes, weights = hermgauss(num_quad)
    points = torch.from_numpy(nodes * np.sqrt(2.0))
    log_weights = torch.from_numpy(np.log(weights) - 0.5 * np.log(np.pi))
    return points.type_as(prototype_tensor), log_weights.type_as(prototype_tensor)


_LOG_FACTORIAL_SUMS: dict[int, torch.Tensor] = {}


def _log_factorial_sum(x: torch.Tensor) -> torch.Tensor:
    # Counts are usually observed data scored many times: cache their constant per tensor.
    if x.requires_grad:
        return (x + 1).lgamma().sum()
    key = id(x)
    cached = _LOG_FACTORIAL_SUMS.get(key)
    if cached is None:
        weakref.finalize(x, _LOG_FACTORIAL_SUMS.pop, key, None)
        cached = _LOG_FACTORIAL_SUMS[key] = (x + 1).lgamma().sum()
    return cached


def sparse_multinomial_likelihood(
    total_count: torch.Tensor, nonzero_logits: torch.Tensor, nonzero_value: torch.Tensor
) -> torch.Tensor:
    """Summed multinomial log likelihood from the nonzero counts only.

    Equals ``Multinomial(logits=logits).log_prob(value).sum()`` where ``nonzero_logits`` are
    the normalized logits at the nonzero entries of ``value`` and ``total_count`` is
    ``value.sum(-1)``.

    :param total_count: the per-row total counts.
    :param nonzero_logits: normalized logits at the nonzero counts.
    :param nonzero_value: the nonzero counts.

    >>> logits = torch.tensor([0.2, 0.3, 0.5]).log()
    >>> value = torch.tensor([2.0, 0.0, 1.0])
    >>> nz = value.nonzero(as_tuple=True)
    >>> sparse_multinomial_likelihood(value.sum(-1), logits[nz], value[nz]).exp()
    tensor(0.0600)
    """
    return (
        _log_factorial_sum(total_count)
        - _log_factorial_sum(nonzero_value)
        + torch.dot(nonzero_logits, nonzero_value)
    )
