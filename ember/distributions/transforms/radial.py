"""Radial flows (Rezende & Mohamed, 2015): contract or expand around a reference point."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms._cached_flow import _ConditionalCachedFlow, _ConditionedCachedFlow, _FlowParams
from ember.distributions.transforms.utils import _check_last_dim

__all__ = ["ConditionalRadial", "ConditionedRadial", "Radial", "conditional_radial", "radial"]

RadialParams = _FlowParams


class ConditionedRadial(_ConditionedCachedFlow):
    """``y = x + beta h(alpha, r) (x - x0)`` with ``r = |x - x0|`` and ``h = 1 / (alpha + r)``.

    ``alpha = softplus(alpha')`` and ``beta = -alpha + softplus(beta')`` keep it invertible;
    the inverse has no closed form, so only cached outputs can be inverted.

    :param params: ``(x0, alpha', beta')`` or a function returning them.
    """

    def __init__(self, params: RadialParams | Callable[[], RadialParams]) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(params)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        x0, alpha_prime, beta_prime = self._current_params()
        _check_last_dim(self, x, x0.size(-1))
        alpha = F.softplus(alpha_prime)
        beta = -alpha + F.softplus(beta_prime)
        diff = x - x0
        r = torch.linalg.vector_norm(diff, dim=-1, keepdim=True)
        h = (alpha + r).reciprocal()
        beta_h = beta * h
        # det J = (1 + beta h)^(D-1) (1 + beta h + beta h' r), with h' = -h^2.
        self._cached_logDetJ = ((x0.size(-1) - 1) * torch.log1p(beta_h) + torch.log1p(beta_h - beta * h.pow(2) * r)).sum(-1)
        y: torch.Tensor = x + beta_h * diff
        return y


class Radial(ConditionedRadial, TransformModule):
    """A radial flow with learnable ``x0``, ``alpha_prime`` and ``beta_prime``.

    :param input_dim: the event size.

    >>> Radial(2)(torch.zeros(3, 2)).shape
    torch.Size([3, 2])
    """

    def __init__(self, input_dim: int) -> None:
        super().__init__(self._radial_params)
        self.x0 = nn.Parameter(torch.empty(input_dim))
        self.alpha_prime = nn.Parameter(torch.empty(1))
        self.beta_prime = nn.Parameter(torch.empty(1))
        self.input_dim = input_dim
        self.reset_parameters()

    def _radial_params(self) -> RadialParams:
        return self.x0, self.alpha_prime, self.beta_prime

    def reset_parameters(self) -> None:
        """Draw every parameter uniformly in ``+-1/sqrt(D)``."""
        bound = 1.0 / math.sqrt(self.x0.size(0))
        with torch.no_grad():
            self.alpha_prime.uniform_(-bound, bound)
            self.beta_prime.uniform_(-bound, bound)
            self.x0.uniform_(-bound, bound)


class ConditionalRadial(_ConditionalCachedFlow):
    """A radial flow whose ``(x0, alpha', beta')`` a network computes from a context.

    :param nn: a network of the context returning ``(x0, alpha', beta')``.
    """

    def __init__(self, nn: Callable[..., Any]) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(nn)

    def condition(self, context: torch.Tensor) -> ConditionedRadial:
        """The :class:`ConditionedRadial` for ``context``."""
        return ConditionedRadial(partial(self._params, context))


def radial(input_dim: int) -> Radial:
    """A :class:`Radial` (Pyro's helper constructor).

    :param input_dim: the event size.
    """
    return Radial(input_dim)


def conditional_radial(input_dim: int, context_dim: int, hidden_dims: Sequence[int] | None = None) -> ConditionalRadial:
    """A :class:`ConditionalRadial` on a :class:`~ember.nn.DenseNN` of the context.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    return ConditionalRadial(DenseNN(context_dim, hidden, param_dims=[input_dim, 1, 1]))
