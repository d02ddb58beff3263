"""The stand-in tensor ``collapse`` returns for a latent site, and the bookkeeping on it.

A :class:`CollapsedValue` holds the prior mean of the latent it stands for and remembers
that site through every torch operation, so ``collapse`` can recognise the observed sites
whose distributions take it as a parameter.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

# Operations that keep a stand-in's elements right-aligned (broadcast or copy them), or
# whose result does not depend on the stand-in's values at all.
_ALIGNED = {
    torch.Tensor.expand, torch.Tensor.expand_as, torch.broadcast_to, torch.Tensor.broadcast_to,
    torch.Tensor.contiguous, torch.Tensor.clone, torch.clone, torch.Tensor.detach, torch.detach,
    torch.Tensor.to, torch.Tensor.type, torch.Tensor.type_as, torch.Tensor.float, torch.Tensor.double,
}  # fmt: skip
_VALUE_FREE = {
    torch.Tensor.new_zeros, torch.Tensor.new_ones, torch.Tensor.new_full, torch.Tensor.new_empty,
    torch.Tensor.new_tensor, torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like,
}  # fmt: skip
_DIVISIONS = {torch.Tensor.div, torch.div, torch.Tensor.__truediv__, torch.true_divide}


class CollapsedValue(torch.Tensor):
    """The stand-in value of a collapsed latent site (or a tensor computed from one).

    Every torch operation on it works on the numbers it holds (the prior mean) and marks its
    result as coming from the same sites; :class:`CollapseMessenger` reads the marks.
    """

    _collapsed_sites: frozenset[str]
    # "value": the latent itself, possibly broadcast; "sum": its sum over the last dim
    # (how torch normalizes probabilities); "derived": anything else.
    _collapsed_kind: str

    @staticmethod
    def _mark(tensor: torch.Tensor, sites: frozenset[str], kind: str) -> CollapsedValue:
        with torch._C.DisableTorchFunctionSubclass():
            marked = tensor.as_subclass(CollapsedValue)
        marked._collapsed_sites = sites
        marked._collapsed_kind = kind
        return marked

    @classmethod
    def __torch_function__(
        cls, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = {} if kwargs is None else kwargs
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*args, **kwargs)
        first = args[0] if args else None
        if func is torch.broadcast_tensors or func is torch.functional.broadcast_tensors:
            return tuple(_like(r, a) for r, a in zip(result, args))
        if func in _VALUE_FREE:
            return result
        if func in _ALIGNED:
            return _like(result, first)
        if isinstance(first, CollapsedValue) and first._collapsed_kind == "value":
            if func in (torch.Tensor.sum, torch.sum) and _sums_last_dim_keepdim(first, args, kwargs):
                return cls._mark(result, first._collapsed_sites, "sum")
            second = args[1] if len(args) > 1 else None
            if (
                func in _DIVISIONS
                and isinstance(second, CollapsedValue)
                and second._collapsed_kind == "sum"
                and second._collapsed_sites == first._collapsed_sites
            ):
                return cls._mark(result, first._collapsed_sites, "value")
        sites = frozenset().union(*(v._collapsed_sites for v in _flatten((args, kwargs))))
        return _mark_all(result, sites)


def _flatten(obj: Any) -> list[CollapsedValue]:
    if isinstance(obj, CollapsedValue):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [v for item in obj for v in _flatten(item)]
    if isinstance(obj, dict):
        return [v for item in obj.values() for v in _flatten(item)]
    return []


def _like(result: Any, source: Any) -> Any:
    """``result`` marked as ``source`` is, when ``source`` is a stand-in."""
    if isinstance(source, CollapsedValue) and isinstance(result, torch.Tensor) and result is not source:
        return CollapsedValue._mark(result, source._collapsed_sites, source._collapsed_kind)
    return result


def _mark_all(result: Any, sites: frozenset[str]) -> Any:
    if isinstance(result, torch.Tensor):
        return CollapsedValue._mark(result, sites, "derived")
    if isinstance(result, (tuple, list)):
        return type(result)(_mark_all(r, sites) for r in result)
    return result


def _sums_last_dim_keepdim(tensor: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if isinstance(dim, (tuple, list)) and len(dim) == 1:
        dim = dim[0]
    return bool(keepdim) and dim in (-1, tensor.dim() - 1)


def _stand_ins(fn: Any) -> list[CollapsedValue]:
    """The stand-ins among the attributes of a distribution and its sub-distributions."""
    found: list[CollapsedValue] = []
    for value in vars(fn).values():
        if isinstance(value, CollapsedValue):
            found.append(value)
        elif isinstance(value, torch.distributions.Distribution):
            found.extend(_stand_ins(value))
    return found
