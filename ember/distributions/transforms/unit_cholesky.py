"""Square matrices to unit lower-triangular matrices."""

from __future__ import annotations

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.transforms.utils import _StatelessTransformMixin

__all__ = ["UnitLowerCholeskyTransform"]

_SQUARE_MATRICES = constraints.independent(constraints.real, 2)  # type: ignore[no-untyped-call]  # torch: unannotated


class UnitLowerCholeskyTransform(_StatelessTransformMixin, Transform):
    """Map a square matrix to a lower-triangular one with ones on the diagonal.

    >>> UnitLowerCholeskyTransform()(torch.full((2, 2), 3.0))
    tensor([[1., 0.],
            [3., 1.]])
    """

    domain = _SQUARE_MATRICES
    codomain = constraints.unit_lower_cholesky

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(x.size(-1), dtype=x.dtype, device=x.device)
        return x.tril(-1) + eye

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y.tril(-1)
