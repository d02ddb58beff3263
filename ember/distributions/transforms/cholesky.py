"""Maps between positive definite (or correlation) matrices and their Cholesky factors."""

from __future__ import annotations

import math
import warnings

import torch
from torch.distributions.transforms import CorrCholeskyTransform, Transform

from ember.distributions import constraints
from ember.distributions.transforms.utils import _StatelessTransformMixin

__all__ = ["CholeskyTransform", "CorrLCholeskyTransform", "CorrMatrixCholeskyTransform"]


class CholeskyTransform(_StatelessTransformMixin, Transform):
    """Map a positive definite matrix ``x`` to its lower Cholesky factor ``L`` (``x = L L^T``).

    The Jacobian is taken over the lower triangle of ``x`` (its free entries).

    >>> t = CholeskyTransform()
    >>> t(torch.tensor([[4.0, 2.0], [2.0, 2.0]]))
    tensor([[2., 0.],
            [1., 1.]])
    """

    bijective = True
    domain: constraints.Constraint = constraints.positive_definite
    codomain: constraints.Constraint = constraints.lower_cholesky

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        factor: torch.Tensor = torch.linalg.cholesky(x)
        return factor

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.matmul(y, y.mT)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # d(L L^T)/dL has log-determinant n log 2 + sum_i (n - i) log L_ii; this is its inverse.
        size = x.size(-1)
        powers = torch.arange(size, 0, -1, dtype=x.dtype, device=x.device)
        return -size * math.log(2) - (powers * y.diagonal(dim1=-2, dim2=-1).log()).sum(-1)


class CorrMatrixCholeskyTransform(CholeskyTransform):
    """Map a correlation matrix to its Cholesky factor.

    The Jacobian is taken with respect to the strictly lower-triangular entries, as for
    :class:`~torch.distributions.transforms.CorrCholeskyTransform`.

    >>> t = CorrMatrixCholeskyTransform()
    >>> t.inv(t(torch.tensor([[1.0, 0.5], [0.5, 1.0]])))
    tensor([[1.0000, 0.5000],
            [0.5000, 1.0000]])
    """

    domain = constraints.corr_matrix
    codomain = constraints.corr_cholesky

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        size = y.size(-1)
        # log |d corr / d chol| = sum_i (size - 1 - i) log L_ii; this is the inverse direction.
        powers = torch.arange(size - 1, -1, -1, dtype=y.dtype, device=y.device)
        return -(powers * y.diagonal(dim1=-2, dim2=-1).log()).sum(-1)


class CorrLCholeskyTransform(CorrCholeskyTransform):
    """Deprecated alias of :class:`~torch.distributions.transforms.CorrCholeskyTransform`.

    :param cache_size: 0 or 1, as for every torch transform.
    """

    def __init__(self, cache_size: int = 0) -> None:
        warnings.warn(
            "class CorrLCholeskyTransform is deprecated in favor of CorrCholeskyTransform.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__(cache_size=cache_size)
