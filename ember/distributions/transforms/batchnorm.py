"""Batch normalization as a bijection (Dinh et al., 2017), for stacking between flows."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ember.distributions import constraints
from ember.distributions.torch_transform import TransformModule

__all__ = ["BatchNorm", "batchnorm"]


class BatchNorm(TransformModule):
    """``y = (x - beta) / gamma * sqrt(var + eps) + mean``, so the inverse normalises a batch.

    In training mode the inverse (the scoring direction) uses the batch's mean and variance
    and updates the moving averages; in eval mode both directions use the moving averages.

    :param input_dim: the event size.
    :param momentum: the weight of a new batch in the moving averages.
    :param epsilon: added to the variance.

    >>> flow = BatchNorm(2).eval()
    >>> flow(torch.zeros(3, 2))
    tensor([[0., 0.],
            [0., 0.],
            [0., 0.]], grad_fn=<AddBackward0>)
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    moving_mean: torch.Tensor
    moving_variance: torch.Tensor

    def __init__(self, input_dim: int, momentum: float = 0.1, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.gamma = nn.Parameter(torch.ones(input_dim))
        self.beta = nn.Parameter(torch.zeros(input_dim))
        self.momentum = momentum
        self.epsilon = epsilon
        self.register_buffer("moving_mean", torch.zeros(input_dim))
        self.register_buffer("moving_variance", torch.ones(input_dim))

    @property
    def constrained_gamma(self) -> torch.Tensor:
        """The positive scale ``relu(gamma) + 1e-6``."""
        return F.relu(self.gamma) + 1e-6

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.beta) / self.constrained_gamma * torch.sqrt(self.moving_variance + self.epsilon) + self.moving_mean

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean, var = y.mean(0), y.var(0)
            with torch.no_grad():
                self.moving_mean.mul_(1 - self.momentum).add_(mean * self.momentum)
                self.moving_variance.mul_(1 - self.momentum).add_(var * self.momentum)
        else:
            mean, var = self.moving_mean, self.moving_variance
        return (y - mean) * self.constrained_gamma / torch.sqrt(var + self.epsilon) + self.beta

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        var = torch.var(y, dim=0, keepdim=True) if self.training else self.moving_variance
        return -self.constrained_gamma.log() + 0.5 * torch.log(var + self.epsilon)


def batchnorm(input_dim: int, **kwargs: Any) -> BatchNorm:
    """A :class:`BatchNorm` (Pyro's helper constructor).

    :param input_dim: the event size.
    :param kwargs: ``momentum`` and ``epsilon``.
    """
    return BatchNorm(input_dim, **kwargs)
