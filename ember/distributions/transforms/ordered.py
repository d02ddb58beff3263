"""The map from real vectors to increasing vectors."""

from __future__ import annotations

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.transforms.utils import _StatelessTransformMixin

__all__ = ["OrderedTransform"]


class OrderedTransform(_StatelessTransformMixin, Transform):
    """Map a real vector to an increasing one: ``y[0] = x[0]``, ``y[i] = y[i-1] + exp(x[i])``.

    >>> OrderedTransform()(torch.tensor([0.0, 0.0, 0.0]))
    tensor([0., 1., 2.])
    """

    domain = constraints.real_vector
    codomain = constraints.ordered_vector
    bijective = True
    sign = +1

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., :1], x[..., 1:].exp()], dim=-1).cumsum(-1)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([y[..., :1], (y[..., 1:] - y[..., :-1]).log()], dim=-1)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x[..., 1:].sum(-1)
