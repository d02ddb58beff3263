"""Levy alpha-stable distributions, with a reparameterized sampler and an integrated density."""

from __future__ import annotations

import math
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._params import (
    broadcast_parameters,
    broadcast_tensors,
    expand_parameters,
)
from ember.distributions.stable_log_prob import stable_log_prob
from ember.distributions.torch_distribution import TorchDistribution

__all__ = ["Stable", "StableWithLogProb"]

_HALF_PI = math.pi / 2
# Within this distance of stability 1 the sampler is interpolated between 1 -/+ it.
_HOLE_RADIUS = 0.01


def _cms(
    alpha: torch.Tensor, beta: torch.Tensor, u: torch.Tensor, w: torch.Tensor, coords: str
) -> torch.Tensor:
    """Chambers-Mallows-Stuck transform of ``u ~ U(-pi/2, pi/2)``, ``w ~ Exp(1)`` (Weron's form)."""
    eps = torch.finfo(u.dtype).eps
    u = u.clamp(min=2 * eps - _HALF_PI, max=_HALF_PI - 2 * eps)
    half_alpha_pi = _HALF_PI * alpha
    b = beta * half_alpha_pi.tan()
    shifted = b.atan() - half_alpha_pi + alpha * (u + _HALF_PI)
    inv_alpha = alpha.reciprocal()
    z = (
        shifted.sin()
        / ((1 + b * b).rsqrt() * u.cos()).pow(inv_alpha)
        * ((shifted - u).cos().clamp(min=eps) / w).pow(inv_alpha - 1)
    )
    z = torch.where(z.isnan(), 0.0, z)
    return z - b if coords == "S0" else z


def _standard_stable(
    alpha: torch.Tensor, beta: torch.Tensor, u: torch.Tensor, w: torch.Tensor, coords: str
) -> torch.Tensor:
    """A standard stable draw, continuous (and differentiable) in ``alpha`` across 1."""
    with torch.no_grad():
        near = (alpha - 1).abs() <= _HOLE_RADIUS
    if not torch._C._get_tracing_state() and not bool(near.any()):
        return _cms(alpha, beta, u, w, coords)
    if coords == "S":
        z = _standard_stable(alpha, beta, u, w, "S0")
        return torch.where(alpha == 1, z, z + beta * (_HALF_PI * alpha).tan())
    low = _cms(torch.where(near, 1 - _HOLE_RADIUS, alpha), beta, u, w, coords)
    high = _cms(torch.where(near, 1 + _HOLE_RADIUS, alpha), beta, u, w, coords)
    t = (alpha - (1 - _HOLE_RADIUS)) / (2 * _HOLE_RADIUS)
    return torch.where(near, (1 - t) * low + t * high, low)


class Stable(TorchDistribution):
    """The Levy alpha-stable distribution ``S0(stability, skew, scale, loc)`` (Nolan's coordinates).

    Stable laws are the limits of normalized sums of i.i.d. variables; ``stability = 2`` is a
    normal with variance ``2 scale**2`` and ``stability = 1, skew = 0`` is a Cauchy. Nolan's
    S0 coordinates make ``loc`` continuous in the other parameters; ``coords="S"`` uses the
    classical (discontinuous at ``stability = 1``) ones. ``rsample`` is the
    Chambers-Mallows-Stuck method, reparameterized; ``log_prob`` integrates Nolan's formula
    numerically (slow; Pyro's stable reparameterizers avoid it).

    :param stability: the index ``alpha`` in ``(0, 2]``.
    :param skew: the skewness ``beta`` in ``[-1, 1]``.
    :param scale: the positive scale.
    :param loc: the location (in the chosen coordinates).
    :param coords: ``"S0"`` (default) or ``"S"``.
    :param validate_args: whether to validate the parameters and values.
    :raises ValueError: if ``coords`` is neither.

    >>> d = Stable(torch.tensor(2.0), torch.tensor(0.0))
    >>> d.variance, d.log_prob(torch.tensor(1.0))  # Normal(0, sqrt(2)): -1.5155
    (tensor(2.), tensor(-1.5155))
    """

    has_rsample = True
    arg_constraints = {
        "stability": constraints.interval(0, 2),  # type: ignore[no-untyped-call]  # torch: unannotated
        "skew": constraints.interval(-1, 1),  # type: ignore[no-untyped-call]  # torch: unannotated
        "scale": constraints.positive,
        "loc": constraints.real,
    }
    support = constraints.real

    def __init__(
        self,
        stability: torch.Tensor | float,
        skew: torch.Tensor | float,
        scale: torch.Tensor | float = 1.0,
        loc: torch.Tensor | float = 0.0,
        coords: str = "S0",
        validate_args: bool | None = None,
    ) -> None:
        if coords not in ("S", "S0"):
            raise ValueError(f"Stable: unknown coords {coords!r}, expected 'S0' or 'S'")
        self.stability, self.skew, self.scale, self.loc = broadcast_parameters(
            type(self).__name__, stability=stability, skew=skew, scale=scale, loc=loc
        )
        self.coords = coords
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new = expand_parameters(self, Stable, _instance, batch_shape, self.arg_constraints)
        new.coords = self.coords
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density by numerical integration in float64 (Nolan's formula).

        With ``coords="S"`` the value is moved to S0 coordinates by subtracting
        ``skew * tan(pi * stability / 2)``. (pyro-ppl 1.9.2 applies ``tan`` to the whole
        shifted value there, which is a bug; in S0 coordinates the two agree.)
        """
        if self._validate_args:
            self._validate_sample(value)
        x = ((value - self.loc) / self.scale).double()
        alpha, beta = self.stability.double(), self.skew.double()
        alpha, beta, x = broadcast_tensors(alpha, beta, x)
        if self.coords == "S":
            x = torch.where(alpha == 1, x, x - beta * (_HALF_PI * alpha).tan())
        return stable_log_prob(alpha, beta, x).to(value.dtype) - self.scale.log()

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws by the Chambers-Mallows-Stuck method."""
        with torch.no_grad():
            shape = self._extended_shape(sample_shape)
            u = self.stability.new_empty(shape).uniform_(-_HALF_PI, _HALF_PI)
            w = self.stability.new_empty(shape).exponential_()
        z = _standard_stable(self.stability, self.skew, u, w, self.coords)
        return self.loc + self.scale * z

    @property
    def mean(self) -> torch.Tensor:
        """The mean where ``stability > 1``, NaN elsewhere."""
        result = self.loc
        if self.coords == "S0":
            result = result - self.scale * self.skew * (_HALF_PI * self.stability).tan()
        return result.masked_fill(self.stability <= 1, math.nan)

    @property
    def variance(self) -> torch.Tensor:
        """``2 scale**2`` where ``stability == 2``, infinite elsewhere."""
        return (2 * self.scale * self.scale).masked_fill(self.stability < 2, math.inf)


class StableWithLogProb(Stable):
    """A :class:`Stable` that reparameterizers leave alone, to be scored by its ``log_prob``.

    Pyro's ``MinimalReparam`` skips it and the stable reparameterizers reject it.

    >>> StableWithLogProb(torch.tensor(1.5), torch.tensor(0.0)).has_rsample
    True
    """
