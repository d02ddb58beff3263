"""The plumbing of :class:`~ember.nn.module.PyroModule`: the param store, the call context.

Pyro's ``PyroModule`` writes the store's maps directly so that the store and the module hold
the very same ``nn.Parameter`` leaf; these helpers do that under the store's lock.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, cast

import torch
from torch.distributions import constraints, transform_to

from ember.params._leaf_ref import _LeafRef
from ember.poutine.runtime import _PYRO_PARAM_STORE

__all__: list[str] = []

_Transform = Callable[[torch.Tensor], torch.Tensor]


def _make_name(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _to_parameter(
    constrained: torch.Tensor | Callable[[], torch.Tensor], constraint: constraints.Constraint
) -> torch.nn.Parameter:
    with torch.no_grad():
        value = constrained() if callable(constrained) else constrained
        inverse = cast(_Transform, transform_to(constraint).inv)
        return torch.nn.Parameter(inverse(value.detach()))


def _check_constraint(name: str, constraint: constraints.Constraint) -> None:
    """Fail early, naming the attribute, for a constraint with no transform (e.g. ``boolean``)."""
    try:
        transform_to(constraint)
    except NotImplementedError as error:
        raise NotImplementedError(f"PyroParam {name!r}: {error}") from error


def _constrain(unconstrained: torch.Tensor, constraint: constraints.Constraint) -> torch.Tensor:
    value = cast(_Transform, transform_to(constraint))(unconstrained)
    setattr(value, "unconstrained", _LeafRef(unconstrained))  # picklable, unlike weakref.ref
    return value


def _store_leaf(name: str, leaf: torch.Tensor, constraint: constraints.Constraint | None = None) -> None:
    """Put ``leaf`` into the param store under ``name`` as it is (Pyro writes the maps directly)."""
    store = _PYRO_PARAM_STORE
    with store._lock:
        old = store._params.get(name)
        if constraint is not None:
            store._constraints[name] = constraint
        store._params[name] = leaf
        if old is not None and old is not leaf:
            store._drop_reverse_entry(old, name)
        store._param_to_name[leaf] = name


def _as_parameter(name: str, value: torch.Tensor) -> torch.nn.Parameter:
    """The store's leaf for ``name`` as an ``nn.Parameter``, converting it in place if needed."""
    leaf = cast(torch.Tensor, getattr(value, "unconstrained")())
    if isinstance(leaf, torch.nn.Parameter):
        return leaf
    parameter = torch.nn.Parameter(leaf.detach())  # same storage: only the type changes
    _store_leaf(name, parameter)
    return parameter


class _Context:
    """The state one root module shares with its submodules while it is being called.

    ``active`` counts nested calls; sample values are cached while it is positive, so each
    :class:`PyroSample` is drawn once per call. ``used`` records that a call has happened, after
    which every submodule's full name is known.
    """

    def __init__(self) -> None:
        self.active = 0
        self.cache: dict[str, Any] = {}
        self.used = False

    def __enter__(self) -> None:
        self.active += 1
        self.used = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.active -= 1
        if not self.active:
            self.cache.clear()

    def get(self, name: str) -> Any:
        return self.cache.get(name) if self.active else None

    def set(self, name: str, value: Any) -> None:
        if self.active:
            self.cache[name] = value


class _FlatWeightsDescriptor:
    """Recompute ``RNNBase._flat_weights`` on each read, so PyroParam/PyroSample weights are seen."""

    def __get__(self, obj: torch.nn.RNNBase | None, obj_type: type | None = None) -> Any:
        if obj is None:
            return self
        return [getattr(obj, name) for name in obj._flat_weights_names]

    def __set__(self, obj: object, value: Any) -> None:
        pass  # the weights are always read afresh
