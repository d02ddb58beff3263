"""Shape, scaling and validation helpers for distributions.

This module keeps no state of its own: the validation switch *is* torch's default
``validate_args`` flag, so Ember and torch can never disagree about it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, overload

import torch
from torch import logsumexp as logsumexp

from ember.distributions._copying import copy_docs_from as copy_docs_from
from ember.distributions._copying import deep_to as deep_to
from ember.distributions._copying import detach as detach
from ember.distributions._copying import weakmethod as weakmethod
from ember._util import ignore_jit_warnings

__all__ = [
    "broadcast_all",
    "broadcast_shape",
    "copy_docs_from",
    "deep_to",
    "detach",
    "enable_validation",
    "eye_like",
    "gather",
    "ignore_jit_warnings",
    "is_identically_one",
    "is_identically_zero",
    "is_validation_enabled",
    "logsumexp",
    "scalar_like",
    "scale_and_mask",
    "sum_leftmost",
    "sum_rightmost",
    "torch_jit_script_if_tracing",
    "validation_enabled",
    "weakmethod",
]

_F = TypeVar("_F", bound=Callable[..., Any])


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
    return _sum_outermost(value, dim, rightmost=True)


@overload
def sum_leftmost(value: torch.Tensor, dim: int | float) -> torch.Tensor: ...
@overload
def sum_leftmost(value: float, dim: int | float) -> float: ...
def sum_leftmost(value: torch.Tensor | float, dim: int | float) -> torch.Tensor | float:
    """Sum out the ``dim`` leftmost dimensions of ``value``.

    ``dim=0`` sums nothing, ``dim=float("inf")`` sums everything, and a negative ``dim`` keeps
    the ``-dim`` rightmost dimensions. Numbers are returned unchanged.

    :param value: a tensor, or a number.
    :param dim: how many leftmost dimensions to sum out.

    >>> sum_leftmost(torch.ones(2, 3, 4), 1).shape, sum_leftmost(torch.ones(2, 3, 4), -1).shape
    (torch.Size([3, 4]), torch.Size([4]))
    """
    return _sum_outermost(value, dim, rightmost=False)


def _sum_outermost(value: torch.Tensor | float, dim: int | float, rightmost: bool) -> torch.Tensor | float:
    if not isinstance(value, torch.Tensor):
        return value
    if dim < 0:
        dim += value.dim()
    if dim == 0:
        return value
    if dim >= value.dim():
        return value.sum()
    if rightmost:
        return value.reshape(value.shape[: value.dim() - int(dim)] + (-1,)).sum(-1)
    return value.reshape((-1,) + value.shape[int(dim) :]).sum(0)


def broadcast_all(*values: torch.Tensor | float) -> tuple[torch.Tensor, ...]:
    """Broadcast tensors and numbers to one shape; numbers become tensors like the first tensor.

    This is :func:`torch.distributions.utils.broadcast_all`, typed.

    :param values: tensors or numbers.
    :raises ValueError: if an argument is neither a tensor nor a number.

    >>> [v.shape for v in broadcast_all(torch.zeros(2, 1), 1.0, torch.ones(3))]
    [torch.Size([2, 3]), torch.Size([2, 3]), torch.Size([2, 3])]
    """
    result: tuple[torch.Tensor, ...] = torch.distributions.utils.broadcast_all(*values)
    return result


def gather(value: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    """Gather ``value`` along ``dim`` at ``index`` after broadcasting the two together.

    Only the first entry of ``index`` along ``dim`` is used, so the result has size 1 there.

    :param value: the tensor to index.
    :param index: a long tensor, broadcastable with ``value``.
    :param dim: the dimension to gather along.

    >>> gather(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1], [0]]), -1)
    tensor([[2.],
            [3.]])
    """
    value, index = broadcast_all(value, index)
    first = torch.zeros(1, dtype=torch.long, device=index.device)
    return value.gather(dim, index.index_select(dim, first))


def scalar_like(prototype: torch.Tensor, fill_value: float) -> torch.Tensor:
    """A 0-dim tensor holding ``fill_value`` with ``prototype``'s dtype and device.

    :param prototype: gives the dtype and device.
    :param fill_value: the value.

    >>> scalar_like(torch.zeros(2, dtype=torch.float64), 3)
    tensor(3., dtype=torch.float64)
    """
    return torch.tensor(fill_value, dtype=prototype.dtype, device=prototype.device)


def eye_like(value: torch.Tensor, m: int, n: int | None = None) -> torch.Tensor:
    """An ``m x n`` identity matrix (``n = m`` by default) with ``value``'s dtype and device.

    Written without ``torch.eye(out=...)``, which the JIT cannot trace.

    :param value: gives the dtype and device.
    :param m: the number of rows.
    :param n: the number of columns.

    >>> eye_like(torch.zeros(()), 2, 3)
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    """
    if n is None:
        n = m
    eye = torch.zeros(m, n, dtype=value.dtype, device=value.device)
    eye.view(-1)[: min(m, n) * n : n + 1] = 1
    return eye


def torch_jit_script_if_tracing(fn: _F) -> _F:
    """Compile ``fn`` with TorchScript only when it is called under the JIT tracer.

    This is :func:`torch.jit.script_if_tracing`.

    :param fn: the function.
    """
    result: _F = torch.jit.script_if_tracing(fn)  # type: ignore[no-untyped-call]  # torch: unannotated
    return result


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
