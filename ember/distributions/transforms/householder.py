"""Householder flows (Tomczak & Welling, 2016): products of reflections, volume preserving."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule
from ember.distributions.torch_transform import TransformModule

__all__ = [
    "ConditionalHouseholder",
    "ConditionedHouseholder",
    "Householder",
    "conditional_householder",
    "householder",
]


class ConditionedHouseholder(Transform):
    """``y = H_K ... H_1 x`` with reflections ``H_k = I - 2 u_k u_k^T`` (``u_k`` normalised).

    :param u_unnormed: the ``(..., K, D)`` reflection directions, or a function returning them.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    volume_preserving = True

    def __init__(self, u_unnormed: torch.Tensor | Callable[[], torch.Tensor] | None = None) -> None:
        super().__init__(cache_size=1)
        self.u_unnormed = u_unnormed

    def u(self) -> torch.Tensor:
        """The unit reflection directions."""
        raw = self.u_unnormed() if callable(self.u_unnormed) else self.u_unnormed
        assert raw is not None
        unit: torch.Tensor = raw / torch.linalg.vector_norm(raw, dim=-1, keepdim=True)
        return unit

    def _reflect(self, x: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
        u = self.u()
        for k in order:
            direction = u[..., k, :]
            x = x - 2.0 * (direction * x).sum(-1, keepdim=True) * direction
        return x

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return self._reflect(x, range(self.u().size(-2)))

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._reflect(y, range(self.u().size(-2) - 1, -1, -1))

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[:-1])


def _check_count(name: str, count_transforms: int, input_dim: int) -> None:
    if count_transforms < 1:
        raise ValueError(f"{name}: number of Householder transforms, {count_transforms}, is less than 1!")
    if count_transforms > input_dim:
        warnings.warn(
            f"Number of Householder transforms, {count_transforms}, is greater than input dimension "
            f"{input_dim}, which is an over-parametrization!",
            stacklevel=3,
        )


class Householder(ConditionedHouseholder, TransformModule):
    """A Householder flow with ``count_transforms`` learnable reflections.

    :param input_dim: the event size ``D``.
    :param count_transforms: the number of reflections ``K``.
    :raises ValueError: when ``count_transforms < 1``.

    >>> flow = Householder(3, count_transforms=2)
    >>> x = torch.randn(4, 3)
    >>> torch.allclose(flow.inv(flow(x)), x, atol=1e-5)
    True
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    volume_preserving = True

    def __init__(self, input_dim: int, count_transforms: int = 1) -> None:
        super().__init__()
        self.input_dim = input_dim
        _check_count("Householder", count_transforms, input_dim)
        self.u_unnormed = nn.Parameter(torch.empty(count_transforms, input_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the directions uniformly in ``+-1/sqrt(D)``."""
        directions = self.u_unnormed
        assert isinstance(directions, torch.Tensor)
        bound = 1.0 / math.sqrt(directions.size(-1))
        with torch.no_grad():
            directions.uniform_(-bound, bound)


class ConditionalHouseholder(ConditionalTransformModule):
    """A Householder flow whose reflection directions a network computes from a context.

    :param input_dim: the event size.
    :param nn: a network of the context returning the direction(s), one per reflection.
    :param count_transforms: the number of reflections.
    :raises ValueError: when ``count_transforms < 1``.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, input_dim: int, nn: Callable[..., Any], count_transforms: int = 1) -> None:
        super().__init__()
        self.nn = nn
        self.input_dim = input_dim
        _check_count("ConditionalHouseholder", count_transforms, input_dim)
        self.count_transforms = count_transforms

    def _u_unnormed(self, context: torch.Tensor) -> torch.Tensor:
        raw = self.nn(context)
        if self.count_transforms == 1:
            single: torch.Tensor = raw.unsqueeze(-2)
            return single
        stacked: torch.Tensor = torch.stack(raw, dim=-2)
        return stacked

    def condition(self, context: torch.Tensor) -> ConditionedHouseholder:
        """The :class:`ConditionedHouseholder` for ``context``."""
        return ConditionedHouseholder(partial(self._u_unnormed, context))


def householder(input_dim: int, count_transforms: int | None = None) -> Householder:
    """A :class:`Householder` with ``input_dim // 2 + 1`` reflections unless told otherwise.

    :param input_dim: the event size.
    :param count_transforms: the number of reflections.
    """
    return Householder(input_dim, count_transforms=input_dim // 2 + 1 if count_transforms is None else count_transforms)


def conditional_householder(
    input_dim: int, context_dim: int, hidden_dims: Sequence[int] | None = None, count_transforms: int = 1
) -> ConditionalHouseholder:
    """A :class:`ConditionalHouseholder` on a :class:`~ember.nn.DenseNN` of the context.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    :param count_transforms: the number of reflections.
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    return ConditionalHouseholder(input_dim, DenseNN(context_dim, hidden, param_dims=[input_dim] * count_transforms), count_transforms)
