"""Typed access to ``torch.distributions.transform_to`` for the param store.

torch's constraint registry and ``Transform.__call__`` are unannotated; the casts here give them
their real types once, so the store calls typed functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias, cast

import torch
from torch.distributions import transform_to
from torch.distributions.constraints import Constraint
from torch.distributions.transforms import ComposeTransform, Transform

__all__ = ["TensorMap", "forward_map", "unconstrain"]

TensorMap: TypeAlias = Callable[[torch.Tensor], torch.Tensor]

_transform_to = cast(Callable[[Constraint], Transform], transform_to)

# Builtin errors raised by torch (or by Python, for non-tensor values) while inverting a value:
# re-raised as the same type with the param's name in front, so callers keep Pyro's error types.
# Exact types only: subclasses may take other constructor arguments.
_RENAMEABLE_ERRORS = frozenset(
    {AttributeError, TypeError, ValueError, IndexError, RuntimeError, NotImplementedError}
)


def _is_stateless(transform: Transform, seen: set[int] | None = None) -> bool:
    """Whether ``transform`` and every transform it refers to cache nothing between calls.

    Only such a transform may be reused across reads: a caching one would hand back a tensor
    from an earlier autograd graph. ``seen`` breaks the ``t._inv._inv is t`` cycles.
    """
    seen = set() if seen is None else seen
    if id(transform) in seen:
        return True
    seen.add(id(transform))
    if getattr(transform, "_cache_size", 0) != 0:
        return False
    children: list[object] = [*getattr(transform, "parts", ()), *getattr(transform, "transforms", ())]
    children += [getattr(transform, "base_transform", None), getattr(transform, "_inv", None)]
    return all(_is_stateless(child, seen) for child in children if isinstance(child, Transform))


def forward_map(constraint: Constraint) -> TensorMap | None:
    """Return the map from unconstrained to ``constraint``-satisfying tensors; ``None`` is identity.

    The result may be kept and reused: a transform that caches is looked up afresh on each call.
    """
    transform = _transform_to(constraint)
    if isinstance(transform, ComposeTransform) and not transform.parts:
        return None
    if _is_stateless(transform):
        return cast(TensorMap, transform)

    def fresh_transform(unconstrained: torch.Tensor) -> torch.Tensor:
        return cast(TensorMap, _transform_to(constraint))(unconstrained)

    return fresh_transform


def unconstrain(name: str, value: object, constraint: Constraint) -> torch.Tensor:
    """Map the constrained ``value`` of param ``name`` to a contiguous leaf that requires grad.

    As in Pyro, the result is ``value`` itself when the inverse transform is the identity and
    ``value`` is already a contiguous leaf. ``value`` is typed ``object`` because untyped callers
    pass anything; the transform rejects what it cannot invert.

    :raises AttributeError: (or the builtin error Pyro raises for that constraint) if ``value``
        cannot be inverted or made a float leaf; the message names the param.
    """
    try:
        with torch.no_grad():
            inverse = cast(Callable[[object], torch.Tensor], _transform_to(constraint).inv)
            unconstrained = inverse(value).contiguous()
        if not unconstrained.is_leaf:
            # Identity-like inverses return the input itself; a non-leaf would keep its graph alive
            # and could not be optimised.
            unconstrained = unconstrained.detach()
        unconstrained.requires_grad_(True)
    except Exception as error:
        if type(error) not in _RENAMEABLE_ERRORS:
            raise
        if isinstance(value, torch.Tensor):
            message = f"param {name!r}: {error}"
        else:
            message = f"param {name!r}: expected a torch.Tensor value, got {type(value).__name__} ({error})"
        raise type(error)(message) from error
    return unconstrained
