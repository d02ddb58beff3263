"""Shape, scaling and validation helpers for distributions.

This module keeps no state of its own: the validation switch *is* torch's default
``validate_args`` flag, so Ember and torch can never disagree about it.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, overload

import torch

__all__ = [
    "broadcast_shape",
    "enable_validation",
    "is_identically_one",
    "is_identically_zero",
    "is_validation_enabled",
    "scale_and_mask",
    "sum_rightmost",
    "validation_enabled",
]


def broadcast_shape(*shapes: Sequence[int], strict: bool = False) -> tuple[int, ...]:
    """Compute the shape that ``shapes`` broadcast to, like :func:`torch.broadcast_shapes`.

    :param shapes: the shapes to broadcast together.
    :param strict: when true, sizes of 1 do not stretch to match other sizes; shapes may still
        differ in length (they are aligned on the right).
    :raises ValueError: if the shapes cannot be broadcast.

    >>> broadcast_shape((2, 1), (3,))
    (2, 3)
    >>> broadcast_shape((2, 1), (2, 3), strict=True)
    Traceback (most recent call last):
    ...
    ValueError: shape mismatch: objects cannot be broadcast to a single shape: (2, 1) vs (2, 3)
    """
    result: list[int] = []  # stored right to left
    for shape in shapes:
        for position, size in enumerate(reversed(shape)):
            if position == len(result):
                result.append(size)
            elif result[position] == size:
                continue
            elif not strict and result[position] == 1:
                result[position] = size
            elif strict or size != 1:
                joined = " vs ".join(str(s) for s in shapes)
                raise ValueError(
                    f"shape mismatch: objects cannot be broadcast to a single shape: {joined}"
                )
    return tuple(reversed(result))


@overload
def sum_rightmost(value: torch.Tensor, dim: int | float) -> torch.Tensor: ...
@overload
def sum_rightmost(value: float, dim: int | float) -> float: ...
def sum_rightmost(value: torch.Tensor | float, dim: int | float) -> torch.Tensor | float:
    """Sum out the ``dim`` rightmost dimensions of ``value``.

    ``dim=0`` sums nothing, ``dim=float("inf")`` sums everything, and a negative ``dim`` keeps
    the ``-dim`` leftmost dimensions. Numbers are returned unchanged.

    :param value: a tensor, or a number.
    :param dim: how many rightmost dimensions to sum out.

    >>> sum_rightmost(torch.ones(2, 3, 4), 2)
    tensor([12., 12.])
    >>> sum_rightmost(torch.ones(2, 3, 4), -1).shape
    torch.Size([2])
    """
    if not isinstance(value, torch.Tensor):
        return value
    if dim < 0:
        dim += value.dim()
    if dim == 0:
        return value
    if dim >= value.dim():
        return value.sum()
    return value.reshape(value.shape[: value.dim() - int(dim)] + (-1,)).sum(-1)


def _is_identically(value: object, constant: int) -> bool:
    if type(value) is float or type(value) is int:  # the common case, without an ABC check
        return value == constant
    if isinstance(value, numbers.Number):
        number: Any = value  # numbers.Number declares no __eq__ with int
        return bool(number == constant)
    # Only integer scalar tensors are trusted to be constants, and only outside tracing,
    # where reading the value would bake it into the graph.
    if (
        isinstance(value, torch.Tensor)
        and value.dtype == torch.int64
        and value.dim() == 0
        and not torch._C._get_tracing_state()
    ):
        return bool(value.item() == constant)
    return False


def is_identically_zero(value: object) -> bool:
    """Whether ``value`` is statically known to be zero (a number, or an int64 scalar tensor).

    :param value: anything.

    >>> is_identically_zero(0), is_identically_zero(torch.tensor(0.0))
    (True, False)
    """
    return _is_identically(value, 0)


def is_identically_one(value: object) -> bool:
    """Whether ``value`` is statically known to be one (a number, or an int64 scalar tensor).

    :param value: anything.

    >>> is_identically_one(1.0), is_identically_one(torch.tensor(1))
    (True, True)
    """
    return _is_identically(value, 1)


@overload
def scale_and_mask(
    tensor: torch.Tensor,
    scale: torch.Tensor | float = 1.0,
    mask: torch.Tensor | bool | None = None,
) -> torch.Tensor: ...
@overload
def scale_and_mask(
    tensor: float,
    scale: torch.Tensor | float = 1.0,
    mask: torch.Tensor | bool | None = None,
) -> torch.Tensor | float: ...
def scale_and_mask(
    tensor: torch.Tensor | float,
    scale: torch.Tensor | float = 1.0,
    mask: torch.Tensor | bool | None = None,
) -> torch.Tensor | float:
    """Scale ``tensor`` by ``scale`` and zero it where ``mask`` is false.

    The number ``0`` and the no-op case (no mask, unit scale) return the input itself. Masking
    uses :func:`torch.where`, so NaNs or infinities under a false mask do not leak into sums or
    gradients.

    :param tensor: a tensor, or the number zero.
    :param scale: a positive number or tensor.
    :param mask: ``None``, a Python bool, or a bool tensor broadcastable with ``tensor``.

    >>> scale_and_mask(torch.tensor([1.0, float("nan")]), 2.0, torch.tensor([True, False]))
    tensor([2., 0.])
    """
    # The no-op case first: it is what almost every site of a trace hits.
    if (mask is None or mask is True) and is_identically_one(scale):
        return tensor
    if is_identically_zero(tensor):
        return tensor
    if mask is None or mask is True:
        return tensor * scale
    if mask is False:
        return torch.zeros_like(tensor) if isinstance(tensor, torch.Tensor) else 0.0
    return torch.where(mask, tensor * scale, 0.0)


def enable_validation(is_validate: bool) -> None:
    """Turn argument and sample validation of all distributions on or off.

    This sets torch's default ``validate_args``, which Ember distributions share.

    :param is_validate: the new setting.
    """
    torch.distributions.Distribution.set_default_validate_args(is_validate)


def is_validation_enabled() -> bool:
    """Whether distributions validate their arguments and samples by default.

    >>> with validation_enabled(False):
    ...     is_validation_enabled()
    False
    """
    return bool(torch.distributions.Distribution._validate_args)


@contextmanager
def validation_enabled(is_validate: bool = True) -> Iterator[None]:
    """Context manager that sets distribution validation and restores the previous setting.

    :param is_validate: the setting inside the block.
    """
    previous = is_validation_enabled()
    enable_validation(is_validate)
    try:
        yield
    finally:
        enable_validation(previous)
