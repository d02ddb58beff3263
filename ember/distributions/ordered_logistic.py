"""The ordinal regression likelihood with logistic link and ordered cutpoints."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions._common import new_instance
from ember.distributions.torch import Categorical

__all__ = ["OrderedLogistic"]


class OrderedLogistic(Categorical):
    """A category in ``{0, ..., K}`` from a latent ``predictor`` and ``K`` ordered cutpoints.

    ``P(Y <= k) = sigmoid(cutpoints[k] - predictor)``; the probabilities of the ``K + 1``
    categories are the differences of those values.

    :param predictor: the latent real predictor, of the batch shape.
    :param cutpoints: the increasing cutpoints, of shape ``batch_shape + (K,)``.
    :param validate_args: whether to validate the parameters and values.

    >>> d = OrderedLogistic(torch.tensor(0.0), torch.tensor([-1.0, 1.0]))
    >>> d.probs
    tensor([0.2689, 0.4621, 0.2689])
    """

    arg_constraints = {"predictor": constraints.real, "cutpoints": constraints.ordered_vector}

    def __init__(
        self,
        predictor: torch.Tensor,
        cutpoints: torch.Tensor,
        validate_args: bool | None = None,
    ) -> None:
        cdf = torch.sigmoid(cutpoints - predictor.unsqueeze(-1))
        self.predictor = predictor.expand(cdf.shape[:-1])
        self.cutpoints = cutpoints.expand(cdf.shape)
        ones = cdf.new_ones(cdf.shape[:-1] + (1,))
        zeros = cdf.new_zeros(cdf.shape[:-1] + (1,))
        probs = torch.cat([cdf, ones], -1) - torch.cat([zeros, cdf], -1)
        super().__init__(probs, validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the predictor, cutpoints and probabilities to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        shape = torch.Size(batch_shape)
        new: Self = new_instance(self, OrderedLogistic, _instance)
        new.predictor = self.predictor.expand(shape)
        new.cutpoints = self.cutpoints.expand(shape + self.cutpoints.shape[-1:])
        return super().expand(shape, new)
