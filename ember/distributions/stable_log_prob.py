"""The log density of the stable distribution by numerical integration (Nolan's formula).

Nolan (1997) writes the density of a standard stable variable as a one-dimensional
integral over the uniform variable of the Chambers-Mallows-Stuck sampler. The integral is
evaluated with Gauss-Legendre quadrature in log space. The formula is singular at
``stability = 1`` and at the mode's offset ``x = 0``; near both, the density is
interpolated linearly between two points safely away on either side, as Pyro does, so the
two libraries agree to float64 rounding.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

__all__ = ["stable_log_prob"]

_ALPHA_NEAR_ONE = 0.05
_VALUE_NEAR_ZERO_ALPHA = 0.01
_VALUE_NEAR_ZERO_DENSITY = 0.1
_NUM_POINTS = 501

_FINFO = torch.finfo(torch.float64)
# Pyro clamps natural logs to these decimal-log bounds; the same bounds keep parity.
_MAX_LOG = math.log10(_FINFO.max)
_MIN_LOG = math.log10(_FINFO.tiny)
_HALF_PI = math.pi / 2


@functools.lru_cache(maxsize=4)
def _legendre(num_points: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Half the Gauss-Legendre nodes on ``[-1, 1]`` and the log weights.

    Newton's method on ``P_n`` from the asymptotic guesses, with ``P_n`` and its derivative
    from the three-term recurrence: a few milliseconds, against a second for the
    eigenvalue method at 501 points.
    """
    n = num_points
    i = torch.arange(1, n + 1, dtype=torch.float64)
    x = torch.cos(math.pi * (i - 0.25) / (n + 0.5))
    for _ in range(100):
        previous, current = torch.ones_like(x), x.clone()
        for k in range(2, n + 1):
            previous, current = current, ((2 * k - 1) * x * current - (k - 1) * previous) / k
        derivative = n * (x * current - previous) / (x * x - 1)
        step = current / derivative
        x = x - step
        if float(step.abs().max()) < 1e-15:
            break
    log_weights = math.log(2) - torch.log((1 - x * x) * derivative * derivative)
    return (x.flip(0) * 0.5).to(device), log_weights.flip(0).to(device)


def _log_integrate(
    log_fn: Callable[[torch.Tensor], torch.Tensor], low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """``log of the integral from low to high of exp(log_fn)``, elementwise over the bounds."""
    half_nodes, log_weights = _legendre(_NUM_POINTS, low.device)
    shape = (-1,) + (1,) * low.dim()
    half_nodes, log_weights = half_nodes.reshape(shape), log_weights.reshape(shape)
    points = low * (0.5 - half_nodes) + high * (0.5 + half_nodes)
    return torch.logsumexp(log_fn(points) + log_weights, dim=0) + ((high - low) / 2).log()


def _log_integrand(
    u: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """Nolan's integrand ``log(g(u) exp(-g(u)))`` plus the Jacobian factor, for ``z > 0``."""
    eps = torch.finfo(u.dtype).eps
    u = u.clamp(min=2 * eps - _HALF_PI, max=_HALF_PI - 2 * eps)
    half_alpha_pi = _HALF_PI * alpha
    atan_b = (beta * half_alpha_pi.tan()).atan()
    cos_u = u.cos()
    shifted = atan_b - half_alpha_pi + alpha * (u + _HALF_PI)
    exponent = 1 / (alpha - 1)
    log_g = (
        atan_b.cos().log() * exponent
        + (z * cos_u / shifted.sin()).log() * (alpha * exponent)
        + ((shifted - u).cos() / cos_u).log()
    )
    g = log_g.clamp(min=_MIN_LOG, max=_MAX_LOG).exp()
    result = -g + (alpha * g / z / (alpha - 1)).abs().log()
    result = torch.where(g == math.inf, -math.inf, result)
    return result.clamp(min=_MIN_LOG, max=_MAX_LOG)


def _log_density_offset(alpha: torch.Tensor, beta: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Log density at ``z`` measured from the S-coordinates origin, away from ``z = 0``."""
    atan_b = (beta * (_HALF_PI * alpha).tan()).atan()
    u_zero = -atan_b / alpha
    # The density of -z under -beta is that of z under beta: integrate only for z > 0.
    negative = z < 0
    beta = torch.where(negative, -beta, beta)
    u_zero = torch.where(negative, -u_zero, u_zero)
    z = z.abs()
    log_integral = _log_integrate(
        lambda u: _log_integrand(u, alpha, beta, z), u_zero, torch.full_like(u_zero, _HALF_PI)
    )
    return log_integral - math.log(math.pi)


def _log_density_at_zero(alpha: torch.Tensor) -> torch.Tensor:
    """The symmetric stable log density at its center (``beta = 0``)."""
    result = torch.lgamma(1 + 1 / alpha) - math.log(math.pi)
    return result.clamp(min=_MIN_LOG, max=_MAX_LOG)


def _interpolate(
    weight: torch.Tensor, log_high: torch.Tensor, log_low: torch.Tensor
) -> torch.Tensor:
    """``log(weight * exp(log_high) + (1 - weight) * exp(log_low))``."""
    return torch.logaddexp(log_high + weight.log(), log_low + (1 - weight).log())


def _log_density_s0(alpha: torch.Tensor, beta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Standard stable log density in S0 coordinates, for ``alpha`` away from 1."""
    z = x + beta * (_HALF_PI * alpha).tan()
    tolerance = (_VALUE_NEAR_ZERO_ALPHA * alpha / (1 - alpha).abs()).clamp(
        max=_VALUE_NEAR_ZERO_DENSITY * (-_log_density_at_zero(alpha)).exp()
    )
    near = z.abs() < tolerance
    result = _log_density_offset(alpha, beta, torch.where(near, tolerance, z))
    if near.any():
        t = tolerance[near]
        below = _log_density_offset(alpha[near], beta[near], -t)
        result = result.clone()
        result[near] = _interpolate(z[near] / (2 * t) + 0.5, result[near], below)
    return result


def stable_log_prob(alpha: torch.Tensor, beta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Log density of the standard stable distribution in S0 coordinates.

    :param alpha: the stability in ``(0, 2]``, float64.
    :param beta: the skew in ``[-1, 1]``, float64, broadcast with ``alpha``.
    :param x: the standardized values, float64, broadcast with ``alpha``.
    """
    near = (alpha - 1).abs() < _ALPHA_NEAR_ONE
    result = _log_density_s0(torch.where(near, 1 + _ALPHA_NEAR_ONE, alpha), beta, x)
    if near.any():
        low_alpha = torch.full_like(alpha[near], 1 - _ALPHA_NEAR_ONE)
        below = _log_density_s0(low_alpha, beta[near], x[near])
        weight = (alpha[near] - 1) / (2 * _ALPHA_NEAR_ONE) + 0.5
        result = result.clone()
        result[near] = _interpolate(weight, result[near], below)
    return result
