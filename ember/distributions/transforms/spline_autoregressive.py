"""Autoregressive spline flows: each coordinate's spline bins come from a MADE network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule
from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms.spline import ConditionalSpline, ConditionedSpline
from ember.distributions.transforms.utils import _cache_matches, _ContextBound

__all__ = [
    "ConditionalSplineAutoregressive",
    "SplineAutoregressive",
    "conditional_spline_autoregressive",
    "spline_autoregressive",
]

class SplineAutoregressive(TransformModule):
    """An autoregressive spline flow (Durkan et al., 2019): ``y_i = spline_i(x_i; x_<i)``.

    :param input_dim: the event size ``D``.
    :param autoregressive_nn: a network returning widths, heights, derivatives (and lambdas)
        as ``(..., K, D)`` tensors, e.g. ``AutoRegressiveNN(D, hidden, param_dims=[K, K, K - 1, K])``.
    :param count_bins: the number of bins ``K``.
    :param bound: the half-width of the spline's interval.
    :param order: ``"linear"`` or ``"quadratic"``.

    >>> from ember.nn import AutoRegressiveNN
    >>> flow = SplineAutoregressive(2, AutoRegressiveNN(2, [20], param_dims=[8, 8, 7, 8]))
    >>> x = torch.randn(3, 2)
    >>> torch.allclose(flow.inv(flow(x)), x, atol=1e-4)
    True
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    autoregressive = True

    def __init__(
        self,
        input_dim: int,
        autoregressive_nn: Callable[..., Any],
        count_bins: int = 8,
        bound: float = 3.0,
        order: str = "linear",
    ) -> None:
        super().__init__(cache_size=1)
        self.arn = autoregressive_nn
        self.spline = ConditionalSpline(autoregressive_nn, input_dim, count_bins, bound, order)
        self._cache_log_detJ: torch.Tensor | None = None

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        spline = self.spline.condition(x)
        y: torch.Tensor = spline(x)
        self._cache_log_detJ = spline._cache_log_detJ
        return y

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        # D fixed-point passes: after pass k the first k coordinates in autoregressive order are exact.
        x = torch.zeros_like(y)
        spline: ConditionedSpline | None = None
        for _ in range(y.size(-1)):
            spline = self.spline.condition(x)
            x = spline._inverse(y)
        assert spline is not None
        self._cache_log_detJ = spline._cache_log_detJ
        return x

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cache_log_detJ is not None
        return self._cache_log_detJ.sum(-1)

class ConditionalSplineAutoregressive(ConditionalTransformModule):
    """A :class:`SplineAutoregressive` whose network also reads a context.

    :param input_dim: the event size.
    :param autoregressive_nn: a network ``f(x, context=c)``, e.g.
        :class:`~ember.nn.ConditionalAutoRegressiveNN`.
    :param kwargs: the other arguments of :class:`SplineAutoregressive`.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, input_dim: int, autoregressive_nn: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.nn = autoregressive_nn
        self.kwargs = kwargs

    def condition(self, context: torch.Tensor) -> SplineAutoregressive:
        """The :class:`SplineAutoregressive` for ``context``."""
        return SplineAutoregressive(self.input_dim, _ContextBound(self.nn, context), **self.kwargs)

def spline_autoregressive(
    input_dim: int, hidden_dims: Sequence[int] | None = None, count_bins: int = 8, bound: float = 3.0, order: str = "linear"
) -> SplineAutoregressive:
    """A :class:`SplineAutoregressive` on an :class:`~ember.nn.AutoRegressiveNN`.

    :param input_dim: the event size.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    :param count_bins: the number of bins.
    :param bound: the half-width of the spline's interval.
    :param order: ``"linear"`` or ``"quadratic"``.
    """
    from ember.nn.auto_reg_nn import AutoRegressiveNN  # ember.nn sits above ember.distributions

    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    arn = AutoRegressiveNN(input_dim, hidden, param_dims=[count_bins, count_bins, count_bins - 1, count_bins])
    return SplineAutoregressive(input_dim, arn, count_bins=count_bins, bound=bound, order=order)

def conditional_spline_autoregressive(
    input_dim: int,
    context_dim: int,
    hidden_dims: Sequence[int] | None = None,
    count_bins: int = 8,
    bound: float = 3.0,
    order: str = "linear",
) -> ConditionalSplineAutoregressive:
    """A :class:`ConditionalSplineAutoregressive` on a :class:`~ember.nn.ConditionalAutoRegressiveNN`.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    :param count_bins: the number of bins.
    :param bound: the half-width of the spline's interval.
    :param order: ``"linear"`` or ``"quadratic"``.
    """
    from ember.nn.auto_reg_nn import ConditionalAutoRegressiveNN  # ember.nn sits above ember.distributions

    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    arn = ConditionalAutoRegressiveNN(
        input_dim, context_dim, hidden, param_dims=[count_bins, count_bins, count_bins - 1, count_bins]
    )
    return ConditionalSplineAutoregressive(input_dim, arn, count_bins=count_bins, bound=bound, order=order)
