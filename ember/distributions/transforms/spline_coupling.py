"""Coupling spline flows: the second part's splines are computed from the first part."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ember.distributions import constraints
from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms.utils import _cache_matches
from ember.distributions.transforms.spline import ConditionalSpline, Spline

__all__ = ["SplineCoupling", "spline_coupling"]


class SplineCoupling(TransformModule):
    """``y_1 = spline(x_1)`` (or ``x_1``), ``y_2 = spline(x_2; theta(x_1))``: one-pass both ways.

    :param input_dim: the event size ``D``.
    :param split_dim: the size of the first part.
    :param hypernet: a network of ``x_1`` returning the second part's bin parameters, each
        ``(..., (D - split_dim) * K)``.
    :param count_bins: the number of bins ``K``.
    :param bound: the half-width of the spline's interval.
    :param order: ``"linear"`` or ``"quadratic"``.
    :param identity: leave the first part unchanged instead of applying a learned spline.

    >>> from ember.nn import DenseNN
    >>> flow = SplineCoupling(3, 1, DenseNN(1, [10], param_dims=[16, 16, 14, 16]))
    >>> x = torch.randn(4, 3)
    >>> torch.allclose(flow.inv(flow(x)), x, atol=1e-4)
    True
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(
        self,
        input_dim: int,
        split_dim: int,
        hypernet: Callable[..., Any],
        count_bins: int = 8,
        bound: float = 3.0,
        order: str = "linear",
        identity: bool = False,
    ) -> None:
        super().__init__(cache_size=1)
        self.lower_spline = Spline(split_dim, count_bins, bound, order)
        self.upper_spline = ConditionalSpline(hypernet, input_dim - split_dim, count_bins, bound, order)
        self.split_dim = split_dim
        self.identity = identity
        self._cache_log_detJ: torch.Tensor | None = None

    def _couple(self, value: torch.Tensor, inverse: bool) -> torch.Tensor:
        first, second = value[..., : self.split_dim], value[..., self.split_dim :]
        parts = []
        if self.identity:
            out_first = first
        else:
            lower = self.lower_spline
            out_first, lower_log_det = lower.spline_op(first, inverse=inverse)
            parts.append(-lower_log_det if inverse else lower_log_det)
        condition = out_first if inverse else first
        upper = self.upper_spline.condition(condition)
        out_second, upper_log_det = upper.spline_op(second, inverse=inverse)
        parts.insert(0, -upper_log_det if inverse else upper_log_det)
        self._cache_log_detJ = torch.cat(parts, dim=-1)
        return torch.cat([out_first, out_second], dim=-1)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return self._couple(x, inverse=False)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._couple(y, inverse=True)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cache_log_detJ is not None
        return self._cache_log_detJ.sum(-1)


def spline_coupling(
    input_dim: int,
    split_dim: int | None = None,
    hidden_dims: Sequence[int] | None = None,
    count_bins: int = 8,
    bound: float = 3.0,
) -> SplineCoupling:
    """A :class:`SplineCoupling` on a :class:`~ember.nn.DenseNN` of the first part.

    :param input_dim: the event size.
    :param split_dim: the size of the first part (default ``input_dim // 2``).
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    :param count_bins: the number of bins.
    :param bound: the half-width of the spline's interval.
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    split = input_dim // 2 if split_dim is None else split_dim
    rest = input_dim - split
    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    net = DenseNN(split, hidden, param_dims=[rest * count_bins, rest * count_bins, rest * (count_bins - 1), rest * count_bins])
    return SplineCoupling(input_dim, split, net, count_bins, bound)
