"""Square matrices to lower Cholesky factors with a softplus diagonal."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.transforms.utils import _StatelessTransformMixin

__all__ = ["SoftplusLowerCholeskyTransform"]

# torch leaves the constraint's __init__ unannotated
_SQUARE_MATRICES = constraints.independent(constraints.real, 2)  # type: ignore[no-untyped-call]


class SoftplusLowerCholeskyTransform(_StatelessTransformMixin, Transform):
    """Map a square matrix to a lower Cholesky factor, with a softplus on the diagonal.

    >>> SoftplusLowerCholeskyTransform()(torch.zeros(2, 2)).diagonal()
    tensor([0.6931, 0.6931])
    """

    domain = _SQUARE_MATRICES
    codomain = constraints.softplus_lower_cholesky

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        diagonal = F.softplus(x.diagonal(dim1=-2, dim2=-1))
        return x.tril(-1) + diagonal.diag_embed()

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        diagonal = y.diagonal(dim1=-2, dim2=-1)
        return y.tril(-1) + (diagonal + torch.log(-torch.expm1(-diagonal))).diag_embed()
