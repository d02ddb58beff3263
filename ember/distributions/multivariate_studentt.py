"""The multivariate Student's t distribution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.distributions.utils import lazy_property
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch import Chi2
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_shape

__all__ = ["MultivariateStudentT"]


class MultivariateStudentT(TorchDistribution):
    """Multivariate Student's t with ``df`` degrees of freedom, location and Cholesky scale.

    A draw is ``loc + scale_tril @ z / sqrt(w / df)`` with ``z`` standard normal and
    ``w ~ Chi2(df)``, so ``rsample`` is reparameterized in all three parameters.

    :param df: degrees of freedom (positive), broadcastable to the batch shape.
    :param loc: the location, whose last dimension is the event.
    :param scale_tril: the lower-triangular scale factor, of shape ``(..., n, n)``.
    :param validate_args: whether to validate arguments and samples.
    :raises ValueError: if ``scale_tril`` is not ``n x n`` for ``n = loc.size(-1)``.

    >>> d = MultivariateStudentT(torch.tensor(3.0), torch.zeros(2), torch.eye(2))
    >>> d.log_prob(torch.zeros(2))
    tensor(-1.8379)
    """

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real_vector,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    has_rsample = True

    df: torch.Tensor
    loc: torch.Tensor
    _unbroadcasted_scale_tril: torch.Tensor
    _chi2: Chi2

    def __init__(
        self,
        df: torch.Tensor | float,
        loc: torch.Tensor,
        scale_tril: torch.Tensor,
        validate_args: bool | None = None,
    ) -> None:
        size = loc.size(-1)
        if scale_tril.shape[-2:] != (size, size):
            raise ValueError(
                f"MultivariateStudentT: expected scale_tril of shape (..., {size}, {size}) to "
                f"match loc of shape {tuple(loc.shape)}, got {tuple(scale_tril.shape)}"
            )
        df = df if isinstance(df, torch.Tensor) else loc.new_tensor(df)
        batch_shape = torch.Size(broadcast_shape(df.shape, loc.shape[:-1], scale_tril.shape[:-2]))
        event_shape = torch.Size((size,))
        self.df = df.expand(batch_shape)
        self.loc = loc.expand(batch_shape + event_shape)
        self._unbroadcasted_scale_tril = scale_tril
        self._chi2 = Chi2(self.df)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def _matrix_shape(self) -> torch.Size:
        return self.batch_shape + self.event_shape + self.event_shape

    @lazy_property
    def scale_tril(self) -> torch.Tensor:
        """The Cholesky scale factor, broadcast to the batch shape."""
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self) -> torch.Tensor:
        """``scale_tril @ scale_tril.T`` (the covariance is this times ``df / (df - 2)``)."""
        tril = self._unbroadcasted_scale_tril
        return (tril @ tril.mT).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self) -> torch.Tensor:
        """The inverse of :attr:`covariance_matrix`."""
        eye = torch.eye(self.loc.size(-1), dtype=self.loc.dtype, device=self.loc.device)
        return torch.cholesky_solve(eye, self._unbroadcasted_scale_tril).expand(
            self._matrix_shape()
        )

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The event is the last dimension of ``loc``.

        :param arg_shapes: shapes of ``df``, ``loc`` and ``scale_tril``.
        """
        loc = tuple(arg_shapes["loc"])
        batch = broadcast_shape(
            tuple(arg_shapes["df"]), loc[:-1], tuple(arg_shapes["scale_tril"])[:-2]
        )
        return torch.Size(batch), torch.Size(loc[-1:])

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape`` without copying.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, MultivariateStudentT, _instance)
        shape = torch.Size(batch_shape)
        matrix_shape = shape + self.event_shape + self.event_shape
        new.df = self.df.expand(shape)
        new.loc = self.loc.expand(shape + self.event_shape)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("scale_tril", "covariance_matrix", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(matrix_shape)
        new._chi2 = self._chi2.expand(shape)
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw reparameterized samples as ``loc + scale_tril @ z * rsqrt(w / df)``.

        :param sample_shape: the shape of independent draws.
        """
        shape = self.shape(sample_shape)
        z = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        w = self._chi2.rsample(sample_shape)
        y = z * torch.rsqrt(w / self.df).unsqueeze(-1)
        return self.loc + (self._unbroadcasted_scale_tril @ y.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log density of ``value``.

        :param value: a tensor whose last dimension is the event.
        """
        if self._validate_args:
            self._validate_sample(value)
        size = self.loc.size(-1)
        diff = (value - self.loc).unsqueeze(-1)
        tril = self._unbroadcasted_scale_tril
        y = torch.linalg.solve_triangular(
            tril.expand(diff.shape[:-2] + tril.shape[-2:]), diff, upper=False
        ).squeeze(-1)
        half_log_det = tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        normalizer = (
            half_log_det
            + 0.5 * size * (self.df.log() + math.log(math.pi))
            + torch.lgamma(0.5 * self.df)
            - torch.lgamma(0.5 * (self.df + size))
        )
        return -0.5 * (self.df + size) * torch.log1p(y.square().sum(-1) / self.df) - normalizer

    @property
    def mean(self) -> torch.Tensor:
        """``loc`` where ``df > 1``, NaN otherwise."""
        defined = (self.df > 1).unsqueeze(-1)
        return torch.where(defined, self.loc, torch.full_like(self.loc, math.nan))

    @property
    def variance(self) -> torch.Tensor:
        """``diag(cov) * df / (df - 2)``: infinite for ``1 < df <= 2``, NaN for ``df <= 1``."""
        df = self.df.unsqueeze(-1)
        scale = self.scale_tril.square().sum(-1)
        result = scale * df / (df - 2)
        result = torch.where(df <= 2, torch.full_like(result, math.inf), result)
        return torch.where(df <= 1, torch.full_like(result, math.nan), result)
