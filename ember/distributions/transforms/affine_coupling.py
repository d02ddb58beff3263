"""Affine coupling flows (RealNVP): the second part is shifted and scaled by a function of the first."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule
from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms._dim import _check_negative_dim
from ember.distributions.transforms.utils import _cache_matches, clamp_preserve_gradients, _ContextBound

__all__ = ["AffineCoupling", "ConditionalAffineCoupling", "affine_coupling", "conditional_affine_coupling"]


class AffineCoupling(TransformModule):
    """RealNVP's coupling layer (Dinh et al., 2017): ``y_1 = x_1``, ``y_2 = mu(x_1) + sigma(x_1) x_2``.

    The event is split along ``dim`` into its first ``split_dim`` entries and the rest; both
    directions take one network pass.

    :param split_dim: the size of the first part along ``dim``.
    :param hypernet: a network of the flattened first part returning ``(mu, log_sigma)``, each
        with as many entries as the second part.
    :param dim: the (negative) dim to split; it and every dim to its right are event dims.
    :param log_scale_min_clip: the lower clip of ``log sigma`` (gradients pass through).
    :param log_scale_max_clip: the upper clip of ``log sigma``.
    :raises ValueError: unless ``dim`` is a negative int.

    >>> from ember.nn import DenseNN
    >>> flow = AffineCoupling(1, DenseNN(1, [10], param_dims=[2, 2]))
    >>> x = torch.randn(4, 3)
    >>> torch.allclose(flow.inv(flow(x)), x, atol=1e-5), torch.equal(flow(x)[:, 0], x[:, 0])
    (True, True)
    """

    bijective = True

    def __init__(
        self,
        split_dim: int,
        hypernet: Callable[..., Any],
        *,
        dim: int = -1,
        log_scale_min_clip: float = -5.0,
        log_scale_max_clip: float = 3.0,
    ) -> None:
        super().__init__(cache_size=1)
        _check_negative_dim("AffineCoupling", dim)
        self.split_dim = split_dim
        self.nn = hypernet
        self.dim = dim
        self._cached_log_scale: torch.Tensor | None = None
        self.log_scale_min_clip = log_scale_min_clip
        self.log_scale_max_clip = log_scale_max_clip
        events = constraints.independent(constraints.real, -dim)  # type: ignore[no-untyped-call]  # torch: unannotated
        self.domain = events
        self.codomain = events

    def _split(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = value.size(self.dim)
        if not 0 < self.split_dim < size:
            raise RuntimeError(
                f"AffineCoupling: split_dim={self.split_dim} must lie strictly inside the event, "
                f"got shape {tuple(value.shape)} split along dim={self.dim}"
            )
        return value.narrow(self.dim, 0, self.split_dim), value.narrow(self.dim, self.split_dim, size - self.split_dim)

    def _shift_log_scale(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean: torch.Tensor
        log_scale: torch.Tensor
        mean, log_scale = self.nn(first.reshape(first.shape[: first.dim() + self.dim] + (-1,)))
        event = second.shape[second.dim() + self.dim :]
        mean = mean.reshape(mean.shape[:-1] + event)
        log_scale = log_scale.reshape(log_scale.shape[:-1] + event)
        log_scale = clamp_preserve_gradients(log_scale, self.log_scale_min_clip, self.log_scale_max_clip)
        self._cached_log_scale = log_scale
        return mean, log_scale

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self._split(x)
        mean, log_scale = self._shift_log_scale(x1, x2)
        return torch.cat([x1, torch.exp(log_scale) * x2 + mean], dim=self.dim)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = self._split(y)
        mean, log_scale = self._shift_log_scale(y1, y2)
        return torch.cat([y1, (y2 - mean) * torch.exp(-log_scale)], dim=self.dim)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self._cached_log_scale is not None and _cache_matches(self, x, y):
            log_scale = self._cached_log_scale
        else:
            _, log_scale = self._shift_log_scale(*self._split(x))
        return log_scale.flatten(log_scale.dim() - self.event_dim).sum(-1)


class ConditionalAffineCoupling(ConditionalTransformModule):
    """An :class:`AffineCoupling` whose hypernetwork also reads a context.

    :param split_dim: the size of the first part.
    :param hypernet: a network ``f(x_1, context=c)``, e.g. :class:`~ember.nn.ConditionalDenseNN`.
    :param kwargs: the other arguments of :class:`AffineCoupling`.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, split_dim: int, hypernet: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__()
        self.split_dim = split_dim
        self.nn = hypernet
        self.kwargs = kwargs

    def condition(self, context: torch.Tensor) -> AffineCoupling:
        """The :class:`AffineCoupling` for ``context``."""
        return AffineCoupling(self.split_dim, _ContextBound(self.nn, context), **self.kwargs)


def _coupling_sizes(
    name: str, input_dim: int | Sequence[int], hidden_dims: Sequence[int] | None, split_dim: int | None, dim: int
) -> tuple[int, list[int], int, int]:
    """The split, hidden sizes, and hypernetwork input and output sizes of a coupling helper."""
    if isinstance(input_dim, int):
        shape, extra = [input_dim], 1
    else:
        shape = list(input_dim)
        if len(shape) != -dim:
            raise ValueError(f"{name}: event shape {shape} must have same length as event_dim {-dim}")
        extra = math.prod(shape[dim + 1 :]) if dim < -1 else 1
    size = shape[dim]
    split = size // 2 if split_dim is None else split_dim
    hidden = [10 * size * extra] if hidden_dims is None else list(hidden_dims)
    return split, hidden, split * extra, (size - split) * extra


def affine_coupling(
    input_dim: int | Sequence[int],
    hidden_dims: Sequence[int] | None = None,
    split_dim: int | None = None,
    dim: int = -1,
    **kwargs: Any,
) -> AffineCoupling:
    """An :class:`AffineCoupling` on a :class:`~ember.nn.DenseNN`.

    :param input_dim: the event size, or the event shape when ``dim < -1``.
    :param hidden_dims: the hidden sizes (default ``[10 * size]``).
    :param split_dim: the size of the first part (default half the event along ``dim``).
    :param dim: the (negative) dim to split.
    :param kwargs: the other arguments of :class:`AffineCoupling`.
    :raises ValueError: when an event shape's length is not ``-dim``.
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    split, hidden, inputs, outputs = _coupling_sizes("affine_coupling", input_dim, hidden_dims, split_dim, dim)
    return AffineCoupling(split, DenseNN(inputs, hidden, [outputs, outputs]), dim=dim, **kwargs)


def conditional_affine_coupling(
    input_dim: int | Sequence[int],
    context_dim: int,
    hidden_dims: Sequence[int] | None = None,
    split_dim: int | None = None,
    dim: int = -1,
    **kwargs: Any,
) -> ConditionalAffineCoupling:
    """A :class:`ConditionalAffineCoupling` on a :class:`~ember.nn.ConditionalDenseNN`.

    :param input_dim: the event size, or the event shape when ``dim < -1``.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default ``[10 * size]``).
    :param split_dim: the size of the first part (default half the event along ``dim``).
    :param dim: the (negative) dim to split.
    :param kwargs: the other arguments of :class:`AffineCoupling`.
    :raises ValueError: when an event shape's length is not ``-dim``.
    """
    from ember.nn.dense_nn import ConditionalDenseNN  # ember.nn sits above ember.distributions

    split, hidden, inputs, outputs = _coupling_sizes("conditional_affine_coupling", input_dim, hidden_dims, split_dim, dim)
    return ConditionalAffineCoupling(split, ConditionalDenseNN(inputs, context_dim, hidden, [outputs, outputs]), dim=dim, **kwargs)
