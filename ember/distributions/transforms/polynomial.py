"""Sum-of-squares polynomial flows (Jaini et al., 2019)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ember.distributions import constraints
from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms.utils import _cache_matches, _check_last_dim

__all__ = ["Polynomial", "polynomial"]


class Polynomial(TransformModule):
    """``y_i = c_i + integral_0^{x_i} sum_k (sum_r a_{ikr}(x_<i) u^r)^2 du``: monotone in ``x_i``.

    The coefficients come from an autoregressive network; the inverse has no closed form,
    so only cached outputs can be inverted.

    :param autoregressive_nn: a network returning ``(count_degree + 1) * count_sum`` outputs
        per input, as a ``(..., (count_degree + 1) * count_sum, D)`` tensor.
    :param input_dim: the event size ``D``.
    :param count_degree: the degree ``R`` of each polynomial being squared.
    :param count_sum: the number ``K`` of squares summed.

    >>> from ember.nn import AutoRegressiveNN
    >>> flow = Polynomial(AutoRegressiveNN(2, [10], param_dims=[15]), input_dim=2, count_degree=4, count_sum=3)
    >>> flow(torch.zeros(3, 2)).shape
    torch.Size([3, 2])
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    autoregressive = True
    powers: torch.Tensor
    power_mask: torch.Tensor
    mask: torch.Tensor

    def __init__(self, autoregressive_nn: Callable[..., Any], input_dim: int, count_degree: int, count_sum: int) -> None:
        super().__init__(cache_size=1)
        self.arn = autoregressive_nn
        self.input_dim = input_dim
        self.count_degree = count_degree
        self.count_sum = count_sum
        self._cached_logDetJ: torch.Tensor | None = None
        self.c = nn.Parameter(torch.empty(input_dim))
        self.reset_parameters()
        powers = torch.arange(1, count_degree + 2, dtype=torch.get_default_dtype())
        self.register_buffer("powers", powers)
        # Entry (r, s) of the square of a degree-R polynomial integrates u^(r+s) to u^(r+s+1)/(r+s+1).
        power_mask = powers + torch.arange(count_degree + 1).unsqueeze(-1).to(powers.dtype)
        self.register_buffer("power_mask", power_mask)
        self.register_buffer("mask", power_mask.reciprocal())

    def reset_parameters(self) -> None:
        """Draw the offsets ``c`` uniformly in ``+-1/sqrt(D)``."""
        bound = 1.0 / math.sqrt(self.c.size(0))
        with torch.no_grad():
            self.c.uniform_(-bound, bound)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(self, x, self.input_dim)
        coefficients = self.arn(x).reshape(-1, self.count_sum, self.count_degree + 1, self.input_dim)
        products = coefficients.unsqueeze(-2) * coefficients.unsqueeze(-3)
        x_flat = x.reshape(-1, 1, 1, self.input_dim)
        integrated = x_flat.pow(self.power_mask.unsqueeze(-1)).unsqueeze(-4)
        y: torch.Tensor = self.c + (products * integrated * self.mask.unsqueeze(-1)).sum((1, 2, 3)).view_as(x)
        derivative = x_flat.pow(self.power_mask.unsqueeze(-1) - 1).unsqueeze(-4)
        self._cached_logDetJ = torch.log((products * derivative).sum((1, 2, 3)).view_as(x) + 1e-8).sum(-1)
        return y

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise KeyError("Polynomial object expected to find key in intermediates cache but didn't")

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cached_logDetJ is not None
        return self._cached_logDetJ


def polynomial(input_dim: int, hidden_dims: Sequence[int] | None = None) -> Polynomial:
    """A :class:`Polynomial` of degree 4 and 3 squares on an :class:`~ember.nn.AutoRegressiveNN`.

    :param input_dim: the event size.
    :param hidden_dims: the hidden sizes (default ``[10 * input_dim]``).
    """
    from ember.nn.auto_reg_nn import AutoRegressiveNN  # ember.nn sits above ember.distributions

    count_degree, count_sum = 4, 3
    hidden = [input_dim * 10] if hidden_dims is None else hidden_dims
    arn = AutoRegressiveNN(input_dim, hidden, param_dims=[(count_degree + 1) * count_sum])
    return Polynomial(arn, input_dim=input_dim, count_degree=count_degree, count_sum=count_sum)
