"""Projection of nonzero vectors onto the unit sphere."""

from __future__ import annotations

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.transforms.utils import _StatelessTransformMixin

__all__ = ["Normalize"]


class Normalize(_StatelessTransformMixin, Transform):
    """Project a nonzero vector onto the unit sphere; the inverse is the identity.

    >>> Normalize()(torch.tensor([3.0, 4.0]))
    tensor([0.6000, 0.8000])
    """

    domain = constraints.real_vector
    codomain = constraints.sphere

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        return torch.div(x, norm.clamp(min=torch.finfo(x.dtype).tiny))

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y
