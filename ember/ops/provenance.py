"""Provenance tracking: tensors that remember which inputs they were computed from.

A :class:`ProvenanceTensor` carries a frozenset of user objects; the result of any torch op
carries the union of its inputs' sets. This is a nonstandard interpretation of a program
(Wingate et al., 2011), used for example to find which latent sites a value depends on.

Only tensors carry provenance. What an op returns that is not a tensor (a shape, a dtype, a
device, a number) comes back as torch returns it: ``x.shape`` is a :class:`torch.Size`, as
for an untracked tensor (pyro-ppl's gives a plain tuple there).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any, Callable, TypeVar

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

__all__ = ["ProvenanceTensor", "detach_provenance", "extract_provenance", "get_provenance", "track_provenance"]

_Tensor = TypeVar("_Tensor", bound=torch.Tensor)


# Leaf types that never carry provenance, skipped without a dispatch.
_UNTRACKED = frozenset({torch.Tensor, int, float, bool, str, type(None), torch.dtype, torch.device, torch.Size})
# What ops return that is returned as it is, without a dispatch (metadata, numbers).
_UNTRACKED_RESULTS = _UNTRACKED - {torch.Tensor} | {torch.layout, torch.memory_format}


def _is_leaf(x: Any) -> bool:
    # torch.Size is a pytree node whose rebuild is a plain tuple: keep it whole.
    return isinstance(x, torch.Size)


class ProvenanceTensor(torch.Tensor):
    """A tensor with a provenance set that every torch op propagates (as the union of inputs').

    Wrapping with an empty provenance returns ``data`` itself. Metadata (``shape``,
    ``size()``, ``dtype``, ``device``, ``dim()``, ...) is returned untracked.

    :param data: the tensor to track (not already a :class:`ProvenanceTensor`).
    :param provenance: the initial provenance set.

    >>> a = ProvenanceTensor(torch.ones(2), frozenset({"a"}))
    >>> b = ProvenanceTensor(torch.ones(2), frozenset({"b"}))
    >>> sorted(get_provenance(a * 2 + b))
    ['a', 'b']
    >>> sorted(get_provenance(a + detach_provenance(b)))
    ['a']
    >>> a.shape
    torch.Size([2])
    """

    _t: torch.Tensor
    _provenance: frozenset[Any]

    def __new__(cls, data: torch.Tensor, provenance: frozenset[Any] = frozenset(), **kwargs: Any) -> Any:
        if isinstance(data, ProvenanceTensor):
            raise TypeError("ProvenanceTensor: data already tracks provenance; use track_provenance to add to it")
        if not provenance:
            return data
        result = data.as_subclass(cls)
        # Keeping the original lets detach_provenance return the very same object each time,
        # which matters when the tensor is a dict key (e.g. in the param store).
        result._t = data
        result._provenance = provenance
        return result

    def __repr__(self) -> str:  # type: ignore[override]  # torch's __repr__ takes a keyword-only argument
        return f"Provenance:\n{self._provenance}\nTensor:\n{self._t}"

    @classmethod
    def __torch_function__(
        cls, func: Callable[..., Any], types: Any, args: Any = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        # Every op on a tracked tensor comes here, so the usual call (positional tensors and
        # numbers, no keywords) is unpacked by hand: tree_flatten costs about as much as the op.
        provenance: frozenset[Any] = frozenset()
        plain_args: Any = []
        for arg in args:
            kind = type(arg)
            if kind is ProvenanceTensor:
                provenance = provenance | arg._provenance if provenance else arg._provenance
                plain_args.append(arg._t)
            elif kind in _UNTRACKED:
                plain_args.append(arg)
            else:  # a container (a list of tensors for torch.stack, ...) or another type
                plain_args, provenance = _extract_pytree(args)
                break
        if kwargs:
            plain_kwargs, more = _extract_pytree(kwargs)
            provenance |= more
        else:
            plain_kwargs = {}
        result = func(*plain_args, **plain_kwargs)
        if not provenance or type(result) in _UNTRACKED_RESULTS:
            return result
        if type(result) is torch.Tensor:
            tracked = result.as_subclass(ProvenanceTensor)
            tracked._t = result
            tracked._provenance = provenance
            return tracked
        return track_provenance(result, provenance)


@singledispatch
def track_provenance(x: Any, provenance: frozenset[Any]) -> Any:
    """Add ``provenance`` to every tensor leaf of the data structure ``x``.

    :param x: a tensor, or a tuple/list/dict/set of them (other leaves, and containers
        holding no tensor, are returned as they are).
    :param provenance: the provenance to add.
    """
    return x


@track_provenance.register(torch.Tensor)
def _track_tensor(x: torch.Tensor, provenance: frozenset[Any]) -> Any:
    return ProvenanceTensor(x, provenance)


@track_provenance.register(ProvenanceTensor)
def _track_provenance_tensor(x: ProvenanceTensor, provenance: frozenset[Any]) -> Any:
    return ProvenanceTensor(x._t, x._provenance | provenance)


@track_provenance.register(torch.Size)
def _track_size(x: torch.Size, provenance: frozenset[Any]) -> Any:
    return x


@track_provenance.register(set)
@track_provenance.register(frozenset)
def _track_set(x: set[Any] | frozenset[Any], provenance: frozenset[Any]) -> Any:
    return type(x)(track_provenance(part, provenance) for part in x)


@track_provenance.register(list)
@track_provenance.register(tuple)
@track_provenance.register(dict)
def _track_pytree(x: Any, provenance: frozenset[Any]) -> Any:
    leaves, spec = tree_flatten(x, is_leaf=_is_leaf)
    if not any(isinstance(leaf, torch.Tensor) for leaf in leaves):
        return x  # metadata such as stride() keeps its own type and identity
    return tree_unflatten([track_provenance(leaf, provenance) for leaf in leaves], spec)


@singledispatch
def extract_provenance(x: Any) -> tuple[Any, frozenset[Any]]:
    """Split a data structure into its provenance-free value and the union of its provenance.

    :param x: a tensor, or a tuple/list/dict/set of them.
    :returns: ``(value, provenance)``.
    """
    return x, frozenset()


@extract_provenance.register(ProvenanceTensor)
def _extract_tensor(x: ProvenanceTensor) -> tuple[Any, frozenset[Any]]:
    return x._t, x._provenance


@extract_provenance.register(set)
@extract_provenance.register(frozenset)
def _extract_set(x: set[Any] | frozenset[Any]) -> tuple[Any, frozenset[Any]]:
    values = []
    provenance: frozenset[Any] = frozenset()
    for part in x:
        value, p = extract_provenance(part)
        values.append(value)
        provenance |= p
    return type(x)(values), provenance


@extract_provenance.register(list)
@extract_provenance.register(tuple)
@extract_provenance.register(dict)
def _extract_pytree(x: Any) -> tuple[Any, frozenset[Any]]:
    leaves, spec = tree_flatten(x, is_leaf=_is_leaf)
    values = []
    provenance: frozenset[Any] = frozenset()
    tracked = False
    for leaf in leaves:
        if isinstance(leaf, ProvenanceTensor):
            value, p = leaf._t, leaf._provenance
        elif type(leaf) in _UNTRACKED:
            value, p = leaf, frozenset()
        else:
            value, p = extract_provenance(leaf)  # a set, or a type a user registered
        tracked = tracked or value is not leaf
        values.append(value)
        provenance |= p
    if not tracked:
        return x, provenance  # the arguments of most ops: nothing to rebuild
    return tree_unflatten(values, spec), provenance


def get_provenance(x: Any) -> frozenset[Any]:
    """The provenance of a tensor or data structure of tensors (empty if untracked).

    :param x: a tensor, or a tuple/list/dict/set of them.
    """
    return extract_provenance(x)[1]


def detach_provenance(x: _Tensor) -> _Tensor:
    """The same data without provenance, like :meth:`torch.Tensor.detach` for gradients.

    :param x: a tensor (or data structure of tensors).
    """
    value: _Tensor = extract_provenance(x)[0]
    return value
