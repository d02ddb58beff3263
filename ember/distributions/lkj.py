"""LKJ priors over correlation matrices: :class:`LKJ` and the deprecated :class:`LKJCorrCholesky`.

Both build on :class:`~ember.distributions.LKJCholesky` (torch's LKJ distribution over Cholesky
factors); :class:`LKJ` pushes it through ``L -> L @ L.T``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions._common import new_instance
from ember.distributions.torch import TransformedDistribution
from ember.distributions.torch_multivariate import LKJCholesky
from ember.distributions.transforms import CorrMatrixCholeskyTransform
from ember._util import warn_at_caller

__all__ = ["LKJ", "LKJCorrCholesky"]


class LKJCorrCholesky(LKJCholesky):
    """Deprecated alias of :class:`~ember.distributions.LKJCholesky` with Pyro's old argument names.

    Constructing one warns with a :class:`FutureWarning`.

    :param d: the dimension of the matrices.
    :param eta: the concentration (``concentration`` of :class:`LKJCholesky`).
    :param validate_args: whether to validate arguments and samples.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     LKJCorrCholesky(3, torch.tensor(2.0)).event_shape
    torch.Size([3, 3])
    """

    def __init__(
        self, d: int, eta: torch.Tensor | float, validate_args: bool | None = None
    ) -> None:
        warn_at_caller(
            "class LKJCorrCholesky(d, eta, validate_args=None) is deprecated "
            "in favor of LKJCholesky(dim, concentration, validate_args=None).",
            FutureWarning,
        )
        super().__init__(d, concentration=eta, validate_args=validate_args)


class LKJ(TransformedDistribution):
    """LKJ distribution over ``dim x dim`` correlation matrices, with density ``det(M)^(eta-1)``.

    ``concentration == 1`` is uniform over correlation matrices; larger values favour matrices
    near the identity, smaller ones strongly correlated matrices.

    :param dim: the dimension of the matrices (at least 2).
    :param concentration: the shape parameter ``eta`` (positive), of shape ``batch_shape``.
    :param validate_args: whether to validate arguments and samples.

    >>> d = LKJ(2, torch.tensor(1.0))
    >>> d.log_prob(torch.eye(2))
    tensor(-0.6931)
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_matrix
    dim: int
    concentration: torch.Tensor

    def __init__(
        self,
        dim: int,
        concentration: torch.Tensor | float = 1.0,
        validate_args: bool | None = None,
    ) -> None:
        base_dist = LKJCholesky(dim, concentration)
        self.dim, self.concentration = base_dist.dim, base_dist.concentration
        super().__init__(
            base_dist, CorrMatrixCholeskyTransform().inv, validate_args=validate_args
        )

    def expand(self, batch_shape: _size, _instance: Any = None) -> LKJ:
        """Expand the underlying :class:`LKJCholesky` to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: LKJ = new_instance(self, LKJ, _instance)
        new.dim = self.dim
        new.concentration = self.concentration.expand(batch_shape)
        result: LKJ = super().expand(batch_shape, _instance=new)
        return result

    @property
    def mean(self) -> torch.Tensor:
        """The identity matrix, broadcast to the batch shape."""
        eye = torch.eye(self.dim, dtype=self.concentration.dtype, device=self.concentration.device)
        return eye.expand(self.batch_shape + (self.dim, self.dim))
