"""Planar flows (Rezende & Mohamed, 2015): ``y = x + u tanh(w.x + b)``."""

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

__all__ = ["ConditionalPlanar", "ConditionedPlanar", "Planar", "conditional_planar", "planar"]

PlanarParams = _FlowParams


class ConditionedPlanar(_ConditionedCachedFlow):
    """A planar flow with given parameters ``(bias, u, w)``; ``u`` is adjusted to keep it invertible.

    The inverse has no closed form: only values this transform produced (cached) can be inverted.

    :param params: ``(bias, u, w)`` or a function returning them.
    """

    def __init__(self, params: PlanarParams | Callable[[], PlanarParams]) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(params)

    def u_hat(self, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Adjust ``u`` so that ``w . u_hat >= -1``, the condition for invertibility."""
        alpha = (u * w).sum(-1, keepdim=True)
        alpha_prime = -1 + F.softplus(alpha)
        return u + (alpha_prime - alpha) * w / w.pow(2).sum(-1, keepdim=True)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        bias, u, w = self._current_params()
        _check_last_dim(self, x, w.size(-1))
        activation = torch.tanh((w * x).sum(-1, keepdim=True) + bias)
        u_hat = self.u_hat(u, w)
        psi = (1.0 - activation.pow(2)) * w
        self._cached_logDetJ = torch.log(torch.abs(1 + (psi * u_hat).sum(-1)))
        return x + u_hat * activation


class Planar(ConditionedPlanar, TransformModule):
    """A planar flow with learnable ``bias``, ``u`` and ``w``.

    :param input_dim: the event size.

    >>> flow = Planar(2)
    >>> flow(torch.zeros(3, 2)).shape
    torch.Size([3, 2])
    """

    def __init__(self, input_dim: int) -> None:
        super().__init__(self._planar_params)
        self.bias = nn.Parameter(torch.empty(1))
        self.u = nn.Parameter(torch.empty(input_dim))
        self.w = nn.Parameter(torch.empty(input_dim))
        self.input_dim = input_dim
        self.reset_parameters()

    def _planar_params(self) -> PlanarParams:
        return self.bias, self.u, self.w

    def reset_parameters(self) -> None:
        """Draw ``u`` and ``w`` uniformly in ``+-1/sqrt(D)``; zero the bias."""
        bound = 1.0 / math.sqrt(self.u.size(0))
        with torch.no_grad():
            self.w.uniform_(-bound, bound)
            self.u.uniform_(-bound, bound)
            self.bias.zero_()


class ConditionalPlanar(_ConditionalCachedFlow):
    """A planar flow whose ``(bias, u, w)`` a network computes from a context.

    :param nn: a network of the context returning ``(bias, u, w)``.
    """

    def __init__(self, nn: Callable[..., Any]) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(nn)

    def condition(self, context: torch.Tensor) -> ConditionedPlanar:
        """The :class:`ConditionedPlanar` for ``context``."""
        return ConditionedPlanar(partial(self._params, context))


def planar(input_dim: int) -> Planar:
    """A :class:`Planar` (Pyro's helper constructor).

    :param input_dim: the event size.
    """
    return Planar(input_dim)


def conditional_planar(input_dim: int, context_dim: int, hidden_dims: Sequence[int] | None = None) -> ConditionalPlanar:
    """A :class:`ConditionalPlanar` on a :class:`~ember.nn.DenseNN` of the context.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    return ConditionalPlanar(DenseNN(context_dim, hidden, param_dims=[1, input_dim, input_dim]))
