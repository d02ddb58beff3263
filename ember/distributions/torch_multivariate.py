"""Ember's versions of torch's distributions over vectors and matrices.

Each class subclasses its :mod:`torch.distributions` namesake and
:class:`~ember.distributions.TorchDistributionMixin`; :mod:`ember.distributions.torch`
re-exports all of them. The ones here add ``infer_shapes`` where the event shape is known from
argument shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.types import _size

from ember.distributions import _conjugate_update as _updates
from ember.distributions._common import TypedTorchMethods
from ember.distributions.torch_distribution import TorchDistributionMixin
from ember.distributions.util import broadcast_shape

__all__ = [
    "Dirichlet",
    "LKJCholesky",
    "LogisticNormal",
    "LowRankMultivariateNormal",
    "MixtureSameFamily",
    "MultivariateNormal",
    "RelaxedOneHotCategorical",
    "Wishart",
]


def _vector_event_shapes(
    vector: Sequence[int], *batch_shapes: Sequence[int]
) -> tuple[torch.Size, torch.Size]:
    """Shapes of a distribution over vectors: the event is the last dim of ``vector``."""
    batch = broadcast_shape(tuple(vector)[:-1], *batch_shapes)
    return torch.Size(batch), torch.Size(tuple(vector)[-1:])


class Dirichlet(TypedTorchMethods, torch.distributions.Dirichlet, TorchDistributionMixin):
    """Dirichlet distribution over the simplex.

    >>> Dirichlet(torch.ones(3)).log_prob(torch.tensor([0.2, 0.3, 0.5]))
    tensor(0.6931)
    """

    conjugate_update = _updates.dirichlet_update

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The event is the last dimension of ``concentration``.

        :param arg_shapes: constructor argument names mapped to their shapes.
        """
        return _vector_event_shapes(arg_shapes["concentration"])


class LKJCholesky(TypedTorchMethods, torch.distributions.LKJCholesky, TorchDistributionMixin):
    """LKJ distribution over Cholesky factors of correlation matrices.

    >>> LKJCholesky(2, 1.0).log_prob(torch.eye(2))
    tensor(-0.6931)
    """


class LogisticNormal(
    TypedTorchMethods, torch.distributions.LogisticNormal, TorchDistributionMixin
):
    """Distribution on the simplex from a stick-breaking transform of a normal vector.

    >>> LogisticNormal(torch.zeros(1), torch.ones(1)).event_shape
    torch.Size([2])
    """


class LowRankMultivariateNormal(
    TypedTorchMethods, torch.distributions.LowRankMultivariateNormal, TorchDistributionMixin
):
    """Multivariate normal with covariance ``cov_factor @ cov_factor.T + diag(cov_diag)``.

    >>> d = LowRankMultivariateNormal(torch.zeros(2), torch.zeros(2, 1), torch.ones(2))
    >>> d.log_prob(torch.zeros(2))
    tensor(-1.8379)
    """

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The event is the last dimension of ``loc``.

        :param arg_shapes: shapes of ``loc``, ``cov_factor`` and ``cov_diag``.
        """
        return _vector_event_shapes(
            arg_shapes["loc"],
            tuple(arg_shapes["cov_factor"])[:-2],
            tuple(arg_shapes["cov_diag"])[:-1],
        )


class MixtureSameFamily(
    TypedTorchMethods, torch.distributions.MixtureSameFamily, TorchDistributionMixin
):
    """Mixture of components from one batched distribution.

    >>> from ember.distributions import Categorical, Normal
    >>> mix = Categorical(torch.tensor([0.5, 0.5]))
    >>> MixtureSameFamily(mix, Normal(torch.zeros(2), 1.0)).log_prob(torch.tensor(0.0))
    tensor(-0.9189)
    """


class MultivariateNormal(
    TypedTorchMethods, torch.distributions.MultivariateNormal, TorchDistributionMixin
):
    """Multivariate normal distribution.

    >>> MultivariateNormal(torch.zeros(2), torch.eye(2)).log_prob(torch.zeros(2))
    tensor(-1.8379)
    """

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The event is the last dimension of ``loc``; matrices add batch dimensions.

        :param arg_shapes: shapes of ``loc`` and one of the matrix parameters.
        """
        matrices = [tuple(shape)[:-2] for name, shape in arg_shapes.items() if name != "loc"]
        return _vector_event_shapes(arg_shapes["loc"], *matrices)


class RelaxedOneHotCategorical(
    TypedTorchMethods, torch.distributions.RelaxedOneHotCategorical, TorchDistributionMixin
):
    """Concrete (Gumbel-softmax) relaxation of the one-hot categorical distribution.

    >>> RelaxedOneHotCategorical(torch.tensor(0.5), torch.ones(3) / 3).event_shape
    torch.Size([3])
    """


class Wishart(TypedTorchMethods, torch.distributions.Wishart, TorchDistributionMixin):
    """Wishart distribution over positive definite matrices.

    >>> Wishart(torch.tensor(3.0), torch.eye(2)).event_shape
    torch.Size([2, 2])
    """

    if TYPE_CHECKING:  # torch's rsample takes one more argument than TypedTorchMethods declares

        def rsample(
            self, sample_shape: _size = torch.Size(), max_try_correction: int | None = None
        ) -> torch.Tensor:
            raise NotImplementedError
