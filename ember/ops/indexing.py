"""Indexing that stays correct when index tensors carry batch and enumeration dims.

:func:`index` is plain indexing with nested index tuples flattened. :func:`vindex` is
vectorized indexing: every tensor index broadcasts against every other one and against the
indexed tensor's batch dims, so ``Vindex(probs)[..., z, :]`` works whether ``z`` is a number,
a batch of samples, or an enumerated value with its enumeration dims on the left.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["Index", "Vindex", "index", "vindex"]


def _flatten(args: Any, out: list[Any]) -> None:
    if isinstance(args, tuple):
        for arg in args:
            _flatten(arg, out)
    elif not (args is Ellipsis and out and out[-1] is Ellipsis):
        # a run of Ellipses means one Ellipsis
        out.append(args)


def index(tensor: torch.Tensor, args: Any) -> torch.Tensor:
    """Index ``tensor`` with ``args``, flattening nested tuples and merging repeated ``...``.

    This lets one expression ``x[..., t]`` serve a number ``t``, a slice, or a reshaping
    index such as ``t = (Ellipsis, None)``, which plain indexing would reject as nested.

    :param tensor: the tensor to index.
    :param args: an index as passed to ``__getitem__``, possibly with nested tuples.

    >>> x = torch.arange(6.0).reshape(2, 3)
    >>> index(x, (Ellipsis, (Ellipsis, None))).shape
    torch.Size([2, 3, 1])
    """
    if not isinstance(args, tuple):
        return tensor[args]
    if not args:
        return tensor
    flat: list[Any] = []
    _flatten(args, flat)
    return tensor[tuple(flat)]


class Index:
    """Sugar for :func:`index`: ``Index(x)[..., i, :]`` is ``index(x, (Ellipsis, i, slice(None)))``.

    :param tensor: the tensor to index.

    >>> Index(torch.zeros(2, 3))[..., (Ellipsis, None)].shape
    torch.Size([2, 3, 1])
    """

    def __init__(self, tensor: torch.Tensor) -> None:
        self._tensor = tensor

    def __getitem__(self, args: Any) -> torch.Tensor:
        return index(self._tensor, args)


def _is_batched(arg: object) -> bool:
    return isinstance(arg, torch.Tensor) and arg.dim() > 0


def _index_checked(tensor: torch.Tensor, args: tuple[Any, ...], full: tuple[Any, ...], batch_dim: int) -> torch.Tensor:
    # Indexing first and diagnosing only on failure keeps the common path free of shape checks.
    try:
        return tensor[args]
    except IndexError as error:
        shapes = [tuple(a.shape) for a in full if _is_batched(a)]
        batch_shape = tuple(tensor.shape[:batch_dim])
        try:
            torch.broadcast_shapes(batch_shape, *shapes)  # type: ignore[no-untyped-call]  # torch leaves broadcast_shapes unannotated
        except RuntimeError:
            raise IndexError(
                f"Vindex: index tensors of shapes {', '.join(map(str, shapes))} cannot be broadcast "
                f"together with each other and with the batch shape {batch_shape} of a tensor of "
                f"shape {tuple(tensor.shape)}"
            ) from error
        raise


def vindex(tensor: torch.Tensor, args: Any) -> torch.Tensor:
    """Vectorized advanced indexing: tensor indices broadcast with each other and with batch dims.

    Each entry of ``args`` is ``slice(None)``, an integer or an integer tensor with no event
    dims; a leading ``Ellipsis`` stands for the batch dims of ``tensor`` (an ``Ellipsis``
    anywhere else is not supported). Without ``Ellipsis``, ``tensor`` has no batch dims and
    ``len(args)`` event dims (missing trailing entries mean ``slice(None)``). The result has
    shape ``broadcast(batch_shape, *index_shapes) + (sizes of the sliced event dims)``.

    :param tensor: the tensor to index.
    :param args: the index, as passed to ``__getitem__``.
    :raises IndexError: if the index tensors and batch shape do not broadcast.
    :raises NotImplementedError: for a non-leading ``Ellipsis`` or a slice other than ``:``.

    >>> x = torch.randn(4, 5, 6)
    >>> i, j = torch.zeros(3, 1, dtype=torch.long), torch.zeros(2, dtype=torch.long)
    >>> vindex(x, (i, slice(None), j)).shape
    torch.Size([3, 2, 5])
    """
    if not isinstance(args, tuple):
        return tensor[args]
    if not args:
        return tensor
    full: tuple[Any, ...]
    if args[0] is Ellipsis:
        event_args = args[1:]
        if not event_args:
            return tensor
        event_dim = len(event_args)
        full = (slice(None),) * (tensor.dim() - event_dim) + event_args
    else:
        event_dim = tensor.dim()
        full = args + (slice(None),) * (tensor.dim() - len(args))
    if len(full) != tensor.dim():
        raise IndexError(
            f"Vindex: too many indices ({len(args)}) for a tensor of shape {tuple(tensor.shape)}"
        )
    if any(a is Ellipsis for a in full):
        raise NotImplementedError("Non-leading Ellipsis is not supported")
    batch_dim = tensor.dim() - event_dim

    # Plain indexing already broadcasts right when the only tensor index leads an unbatched tensor.
    if not any(_is_batched(a) for a in full[1:]) and not (batch_dim and _is_batched(full[0])):
        return _index_checked(tensor, full, full, batch_dim)

    # Otherwise every sliced dim becomes an arange placed to the right of all index batch dims.
    kept_event_dims = sum(isinstance(a, slice) for a in full[batch_dim:])
    converted: list[Any] = list(full)
    trailing = 0
    for pos in range(len(full) - 1, -1, -1):
        arg = full[pos]
        if isinstance(arg, slice):
            if arg != slice(None):
                raise NotImplementedError("Nontrivial slices are not supported")
            arange = torch.arange(tensor.size(pos), dtype=torch.long, device=tensor.device)
            converted[pos] = arange.reshape((-1,) + (1,) * trailing)
            trailing += 1
        elif _is_batched(arg):
            converted[pos] = arg.reshape(arg.shape + (1,) * kept_event_dims)
    return _index_checked(tensor, tuple(converted), full, batch_dim)


class Vindex:
    """Sugar for :func:`vindex`: ``Vindex(x)[..., i, :]`` is ``vindex(x, (Ellipsis, i, slice(None)))``.

    :param tensor: the tensor to index.

    >>> probs = torch.rand(3, 4)
    >>> z = torch.arange(3).reshape(3, 1, 1)  # an enumerated value, enumeration dim on the left
    >>> Vindex(probs)[..., z, :].shape
    torch.Size([3, 1, 1, 4])
    """

    def __init__(self, tensor: torch.Tensor) -> None:
        self._tensor = tensor

    def __getitem__(self, args: Any) -> torch.Tensor:
        return vindex(self._tensor, args)
