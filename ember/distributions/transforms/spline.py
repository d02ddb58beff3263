"""Monotonic rational-quadratic (and linear-rational) spline flows, elementwise on ``[-B, B]``.

The spline has ``K`` bins between ``-bound`` and ``bound`` with learned widths, heights and
interior knot derivatives (Durkan et al., 2019); ``order="linear"`` uses the linear rational
splines of Dolatabadi et al. (2020), with one more parameter ``lambda`` per bin. Outside the
interval the map is the identity.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule
from ember.distributions.torch_transform import TransformModule
from ember.distributions.util import broadcast_shape
from ember.distributions.transforms.utils import _cache_matches, _check_last_dim

__all__ = ["ConditionalSpline", "ConditionedSpline", "Spline", "conditional_spline", "spline"]

SplineParams = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]
_MIN_BIN_WIDTH = _MIN_BIN_HEIGHT = _MIN_DERIVATIVE = 1e-3
_MIN_LAMBDA = 0.025
_EPS = 1e-6


def _check_order(name: str, order: str) -> None:
    if order not in ("linear", "quadratic"):
        raise ValueError(f"{name}: keyword argument 'order' must be one of ['linear', 'quadratic'], but '{order}' was found!")


def _knots(sizes: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin sizes (summing to one) to the sizes and knots of bins tiling ``[-bound, bound]``."""
    knots = F.pad(torch.cumsum(sizes, dim=-1), (1, 0), value=0.0) * (2 * bound) - bound
    # Pin the ends exactly, whatever the rounding of the cumulative sum.
    knots = torch.cat([torch.full_like(knots[..., :1], -bound), knots[..., 1:-1], torch.full_like(knots[..., :1], bound)], -1)
    return knots[..., 1:] - knots[..., :-1], knots


def _gather_bins(table: torch.Tensor, index: torch.Tensor) -> list[torch.Tensor]:
    """Pick bin ``index[..., d]`` of ``table[f, ..., d, :]`` for every feature ``f``: ``F`` tensors ``(..., D)``.

    The feature dim leads, so each picked column comes out contiguous (faster arithmetic after).
    """
    if table.dim() == 3:  # unbatched parameters: one flat index_select (much faster than advanced indexing)
        features, dims, bins = table.shape
        offsets = torch.arange(0, dims * bins, bins, device=table.device)
        flat = table.reshape(features, dims * bins).index_select(1, (index + offsets).reshape(-1))
        return list(flat.reshape((features,) + index.shape).unbind(0))
    batch = torch.Size(broadcast_shape(table.shape[1:-2], index.shape[:-1]))
    table = table.expand(table.shape[:1] + batch + table.shape[-2:])
    gather_index = index.expand(batch + index.shape[-1:]).unsqueeze(-1).unsqueeze(0)
    gather_index = gather_index.expand((table.size(0),) + gather_index.shape[1:])
    return list(table.gather(-1, gather_index).squeeze(-1).unbind(0))


def _bin_index(x: torch.Tensor, knots: torch.Tensor, count_bins: int) -> torch.Tensor:
    """The bin of each ``x[..., d]`` among ``knots[..., d, :]``: the number of knots ``<= x``, minus one."""
    # Sum signs knot by knot: float arithmetic only. Comparisons, torch.where and searchsorted
    # all go through bool tensors, several times slower on CPU (bench/distributions_flows.py).
    signs = torch.zeros_like(x)
    for knot in knots.unbind(-1):
        signs = signs + torch.sign(x - knot)
    # sum(sign) = #above - #below, and at most one knot ties: #(knot <= x) = ceil((sum + n) / 2).
    count = torch.ceil((signs + knots.size(-1)) * 0.5)
    return (count - 1).clamp(0, count_bins - 1).long()


def _at_most(x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """``1.0`` where ``x <= bound``, else ``0.0``, as floats (see :func:`_bin_index`)."""
    return torch.ceil((torch.sign(bound - x) + 1) * 0.5)


def _blend(mask: torch.Tensor, if_one: torch.Tensor, if_zero: torch.Tensor) -> torch.Tensor:
    return if_zero + mask * (if_one - if_zero)


def _monotonic_rational_spline(
    inputs: torch.Tensor,
    widths: torch.Tensor,
    heights: torch.Tensor,
    derivatives: torch.Tensor,
    lambdas: torch.Tensor | None = None,
    inverse: bool = False,
    bound: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline (or its inverse) at ``inputs`` and the elementwise ``log|d output / d input|``.

    :param inputs: a ``(..., D)`` tensor.
    :param widths: normalised bin widths ``(..., D, K)`` (softmax outputs).
    :param heights: normalised bin heights ``(..., D, K)``.
    :param derivatives: positive interior knot derivatives ``(..., D, K - 1)``.
    :param lambdas: the linear-rational mixing weights in ``(0, 1)``, ``(..., D, K)``, or ``None``
        for the quadratic spline.
    """
    assert bound > 0.0
    count_bins = widths.size(-1)
    widths = _MIN_BIN_WIDTH + (1.0 - _MIN_BIN_WIDTH * count_bins) * widths
    heights = _MIN_BIN_HEIGHT + (1.0 - _MIN_BIN_HEIGHT * count_bins) * heights
    widths, x_knots = _knots(widths, bound)
    heights, y_knots = _knots(heights, bound)
    # The end derivatives are 1 - min_derivative (Pyro's padding), the interior ones >= min.
    derivatives = F.pad(_MIN_DERIVATIVE + derivatives, (1, 1), value=1.0 - _MIN_DERIVATIVE)
    columns = [widths, x_knots[..., :-1], heights, y_knots[..., :-1], heights / widths, derivatives[..., :-1], derivatives[..., 1:]]
    if lambdas is not None:
        columns.append((1 - 2 * _MIN_LAMBDA) * lambdas + _MIN_LAMBDA)
    table = torch.stack(columns, dim=0)

    # Evaluate outside points at the interval's edge, where the spline is the identity, then add
    # back the overshoot: identity outside, without masks, and no branch yields NaN gradients.
    x = inputs.clamp(-bound, bound)
    overshoot = inputs - x
    index = _bin_index(x, (y_knots if inverse else x_knots) + _EPS, count_bins)
    picked = _gather_bins(table, index)
    w, cw, h, ch, delta, d0, d1 = picked[:7]

    if lambdas is None:
        slope_sum = d0 + d1 - 2 * delta
        if inverse:
            shifted = x - ch
            a = shifted * slope_sum + h * (delta - d0)
            b = h * d0 - shifted * slope_sum
            c = -delta * shifted
            discriminant = (b.pow(2) - 4 * a * c).clamp(min=0)
            theta = (2 * c) / (-b - torch.sqrt(discriminant))
            outputs = theta * w + cw
        else:
            theta = (x - cw) / w
        mix = theta * (1 - theta)
        denominator = delta + slope_sum * mix
        if not inverse:
            outputs = ch + h * (delta * theta.pow(2) + d0 * mix) / denominator
        log_slope = torch.log(delta.pow(2) * (d1 * theta.pow(2) + 2 * delta * mix + d0 * (1 - theta).pow(2))) - 2 * torch.log(
            denominator
        )
        logabsdet = -log_slope if inverse else log_slope
    else:
        lam = picked[7]
        wb = torch.sqrt(d0 / d1)
        wc = (lam * d0 + (1 - lam) * wb * d1) / delta
        ya, yb = ch, h + ch
        yc = ((1 - lam) * ya + lam * wb * yb) / ((1 - lam) + lam * wb)
        # Blend numerators and denominators separately (never divide in the unused branch).
        if inverse:
            lower = _at_most(x, yc)
            numerator = _blend(lower, lam * (ya - x), (wc - lam * wb) * x + lam * wb * yb - wc * yc)
            denominator = _blend(lower, (wc - 1) * x + ya - wc * yc, (wc - wb) * x + wb * yb - wc * yc)
            outputs = numerator / denominator * w + cw
            scale = w
        else:
            theta = (x - cw) / w
            lower = _at_most(theta, lam)
            numerator = _blend(lower, ya * (lam - theta) + wc * yc * theta, wc * yc * (1 - theta) + wb * yb * (theta - lam))
            denominator = _blend(lower, (lam - theta) + wc * theta, wc * (1 - theta) + wb * (theta - lam))
            outputs = numerator / denominator
            scale = w.reciprocal()
        slope_numerator = _blend(lower, wc * lam * (yc - ya), wb * wc * (1 - lam) * (yb - yc)) * scale
        logabsdet = torch.log(slope_numerator) - 2 * torch.log(denominator.abs())
    outputs = outputs + overshoot
    inside = 1 - torch.sign(overshoot.abs())
    logabsdet = logabsdet * inside
    return outputs, logabsdet


class ConditionedSpline(Transform):
    """An elementwise spline with given (or computed-on-demand) parameters.

    :param params: ``(widths, heights, derivatives, lambdas)`` as for
        :func:`_monotonic_rational_spline`, or a function returning them.
    :param bound: the half-width of the spline's interval.
    :param order: ``"linear"`` or ``"quadratic"``.
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True

    def __init__(self, params: SplineParams | Callable[[], SplineParams], bound: float = 3.0, order: str = "linear") -> None:
        super().__init__(cache_size=1)
        self._params = params
        self.order = order
        self.bound = bound
        self._cache_log_detJ: torch.Tensor | None = None

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        y, log_detJ = self.spline_op(x)
        self._cache_log_detJ = log_detJ
        return y

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        x, log_detJ = self.spline_op(y, inverse=True)
        self._cache_log_detJ = -log_detJ
        return x

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cache_log_detJ is not None
        return self._cache_log_detJ

    def spline_op(self, x: torch.Tensor, inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The spline (or its inverse) at ``x``, and the elementwise log-slope."""
        widths, heights, derivatives, lambdas = self._params() if callable(self._params) else self._params
        _check_last_dim(self, x, widths.size(-2), "y" if inverse else "x")
        return _monotonic_rational_spline(x, widths, heights, derivatives, lambdas, inverse=inverse, bound=self.bound)


class Spline(ConditionedSpline, TransformModule):
    """An elementwise monotonic spline flow with learnable bins (Durkan et al., 2019).

    :param input_dim: the event size ``D``.
    :param count_bins: the number of bins ``K``.
    :param bound: the spline acts on ``[-bound, bound]`` and is the identity outside.
    :param order: ``"linear"`` (linear rational) or ``"quadratic"`` (rational quadratic).
    :raises ValueError: for another order.

    >>> flow = Spline(2, count_bins=4)
    >>> x = torch.tensor([[0.3, -5.0]])
    >>> y = flow(x)
    >>> y[0, 1].item(), torch.allclose(flow.inv(y), x, atol=1e-5)
    (-5.0, True)
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True

    def __init__(self, input_dim: int, count_bins: int = 8, bound: float = 3.0, order: str = "linear") -> None:
        _check_order("Spline", order)
        super().__init__(self._spline_params, bound=bound, order=order)
        self.input_dim = input_dim
        self.count_bins = count_bins
        self.unnormalized_widths = nn.Parameter(torch.randn(input_dim, count_bins))
        self.unnormalized_heights = nn.Parameter(torch.randn(input_dim, count_bins))
        self.unnormalized_derivatives = nn.Parameter(torch.randn(input_dim, count_bins - 1))
        if order == "linear":
            self.unnormalized_lambdas = nn.Parameter(torch.rand(input_dim, count_bins))

    def _spline_params(self) -> SplineParams:
        widths = F.softmax(self.unnormalized_widths, dim=-1)
        heights = F.softmax(self.unnormalized_heights, dim=-1)
        derivatives = F.softplus(self.unnormalized_derivatives)
        lambdas = torch.sigmoid(self.unnormalized_lambdas) if self.order == "linear" else None
        return widths, heights, derivatives, lambdas


class ConditionalSpline(ConditionalTransformModule):
    """A :class:`Spline` whose bin parameters a network computes from a context.

    :param nn: a network of the context returning widths, heights, derivatives (and lambdas
        for ``order="linear"``), each ``(..., D * K)`` (dense) or ``(..., K, D)`` (autoregressive).
    :param input_dim: the event size ``D``.
    :param count_bins: the number of bins ``K``.
    :param bound: the half-width of the spline's interval.
    :param order: ``"linear"`` or ``"quadratic"``.
    :raises ValueError: for another order.
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True

    def __init__(self, nn: Callable[..., Any], input_dim: int, count_bins: int, bound: float = 3.0, order: str = "linear") -> None:
        _check_order("ConditionalSpline", order)
        super().__init__()
        self.nn = nn
        self.input_dim = input_dim
        self.count_bins = count_bins
        self.bound = bound
        self.order = order

    def _shape(self, raw: torch.Tensor, bins: int) -> torch.Tensor:
        if raw.size(-1) == self.input_dim:
            return raw.transpose(-1, -2)
        return raw.reshape(raw.shape[:-1] + (self.input_dim, bins))

    def _params(self, context: torch.Tensor) -> SplineParams:
        outputs = self.nn(context)
        lambdas = torch.sigmoid(self._shape(outputs[3], self.count_bins)) if self.order == "linear" else None
        widths = F.softmax(self._shape(outputs[0], self.count_bins), dim=-1)
        heights = F.softmax(self._shape(outputs[1], self.count_bins), dim=-1)
        derivatives = F.softplus(self._shape(outputs[2], self.count_bins - 1))
        return widths, heights, derivatives, lambdas

    def condition(self, context: torch.Tensor) -> ConditionedSpline:
        """The :class:`ConditionedSpline` for ``context``."""
        return ConditionedSpline(partial(self._params, context), bound=self.bound, order=self.order)


def spline(input_dim: int, **kwargs: Any) -> Spline:
    """A :class:`Spline` (Pyro's helper constructor).

    :param input_dim: the event size.
    :param kwargs: the other arguments of :class:`Spline`.
    """
    return Spline(input_dim, **kwargs)


def conditional_spline(
    input_dim: int,
    context_dim: int,
    hidden_dims: list[int] | None = None,
    count_bins: int = 8,
    bound: float = 3.0,
    order: str = "linear",
) -> ConditionalSpline:
    """A :class:`ConditionalSpline` on a :class:`~ember.nn.DenseNN` of the context.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    :param count_bins: the number of bins.
    :param bound: the half-width of the spline's interval.
    :param order: ``"linear"`` or ``"quadratic"``.
    :raises ValueError: for another order.
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    _check_order("conditional_spline", order)
    sizes = [input_dim * count_bins, input_dim * count_bins, input_dim * (count_bins - 1)]
    if order == "linear":
        sizes.append(input_dim * count_bins)
    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    return ConditionalSpline(DenseNN(context_dim, hidden, param_dims=sizes), input_dim, count_bins, bound=bound, order=order)
