"""Elementwise activations as bijections: ELU and leaky ReLU (the flows' nonlinearities)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.transforms.utils import _StatelessTransformMixin

__all__ = ["ELUTransform", "LeakyReLUTransform", "elu", "leaky_relu"]

_LOG_SLOPE = math.log(0.01)


class ELUTransform(_StatelessTransformMixin, Transform):
    """The exponential linear unit ``y = x`` for ``x > 0``, ``y = exp(x) - 1`` otherwise.

    >>> t = ELUTransform()
    >>> t(torch.tensor([-1.0, 2.0]))
    tensor([-0.6321,  2.0000])
    """

    domain = constraints.real
    # The range is (-1, inf); Pyro declares ``positive``, which rejects ELU's negative outputs.
    codomain = constraints.greater_than(-1.0)  # type: ignore[no-untyped-call]  # torch: unannotated
    bijective = True
    sign = +1

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x)

    def _inverse(self, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        return y.clamp(min=0) + torch.log1p(y + eps).clamp(max=0)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -F.relu(-x)


def elu() -> ELUTransform:
    """An :class:`ELUTransform` (Pyro's helper constructor)."""
    return ELUTransform()


class LeakyReLUTransform(_StatelessTransformMixin, Transform):
    """The leaky rectifier ``y = x`` for ``x >= 0``, ``y = 0.01 x`` otherwise.

    >>> LeakyReLUTransform()(torch.tensor([-1.0, 2.0]))
    tensor([-0.0100,  2.0000])
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(y, negative_slope=100.0)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0.0, torch.zeros_like(x), torch.full_like(x, _LOG_SLOPE))


def leaky_relu() -> LeakyReLUTransform:
    """A :class:`LeakyReLUTransform` (Pyro's helper constructor)."""
    return LeakyReLUTransform()
