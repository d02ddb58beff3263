"""The parameter store: named unconstrained leaf tensors behind a dict of constrained values.

A parameter is kept as an unconstrained leaf tensor (``requires_grad=True``, contiguous) plus the
constraint it was declared with. Reading ``store[name]`` maps the leaf through
``transform_to(constraint)`` and tags the result with ``.unconstrained``, a weak reference back to
the leaf, so optimisers can find what to step. The store behaves like Pyro 1.9's
``pyro.params.param_store.ParamStoreDict``; where it differs, :class:`ParamStoreDict` says so.

This module holds no global store: ``ember.poutine.runtime`` owns the single process-wide one.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, ItemsView, Iterator, KeysView
from contextlib import contextmanager
from typing import TypeAlias

import torch
from torch.distributions import constraints
from torch.distributions.constraints import Constraint
from torch.serialization import MAP_LOCATION

from ._init_check import _check_init
from ._leaf_ref import _LeafRef
from ._names import (
    module_from_param_with_module_name,
    normalize_param_name,
    param_with_module_name,
    user_param_name,
)
from ._persistence import StateDict, _check_state, _loaded_constraint, _read_state, _write_state
from ._transforms import TensorMap, forward_map, unconstrain
from ember._util import warn_at_caller
from ember.params._names import _MODULE_NAMESPACE_DIVIDER as _MODULE_NAMESPACE_DIVIDER  # Pyro's name here
from ember.distributions.util import is_validation_enabled as _distribution_validation_enabled

__all__ = [
    "ParamStoreDict",
    "StateDict",
    "module_from_param_with_module_name",
    "normalize_param_name",
    "param_with_module_name",
    "user_param_name",
]

InitValue: TypeAlias = torch.Tensor | Callable[[], torch.Tensor]

# (leaf, constraint, forward map or None for identity), built under the lock. A read uses it only
# while the maps still hold both its leaf and its constraint, so it needs no lock itself.
_Slot: TypeAlias = tuple[torch.Tensor, Constraint, TensorMap | None]


class ParamStoreDict:
    """A thread-safe store of named parameters, read and written as constrained values.

    Each name maps to an unconstrained leaf tensor and a constraint. The dict interface works in
    constrained space: ``store[name]`` returns a new tensor ``transform_to(constraint)(leaf)``
    on each read (the leaf itself for ``constraints.real``) whose ``.unconstrained()`` is the leaf;
    ``store[name] = value`` inverts ``value`` under the name's existing constraint.
    :meth:`named_parameters` yields the leaves themselves.

    Mutations hold a re-entrant lock, so threads may share one store; a read sees a consistent
    (leaf, constraint) pair without taking it. Iteration methods (:meth:`keys`, :meth:`items`,
    :meth:`named_parameters`, ...) work on a snapshot.

    Differences from Pyro 1.9, all for robustness:

    - a value whose inverse is not a leaf (possible under identity-like transforms) is detached
      before it is stored, so the store only ever holds leaves;
    - replacing or deleting a param drops the old leaf's reverse entry (Pyro keeps it, leaking the
      old tensor), so :meth:`param_name` of a replaced leaf is ``None``;
    - a failed :meth:`setdefault` or ``store[name] = value`` leaves no trace (Pyro keeps the
      constraint), and its error names the param;
    - transforms are looked up once per stored constraint and reused (a transform that caches is
      looked up on each read, as Pyro does);
    - the store pickles and deep-copies (through :meth:`get_state`).

    :Example:

    >>> import torch
    >>> from torch.distributions import constraints
    >>> store = ParamStoreDict()
    >>> scale = store.setdefault("scale", torch.tensor([1.0, 2.0]), constraints.positive)
    >>> scale
    tensor([1., 2.], grad_fn=<...>)
    >>> leaf = scale.unconstrained()
    >>> leaf.is_leaf, store.param_name(leaf)
    (True, 'scale')
    >>> store["scale"] = torch.tensor([3.0, 4.0])
    >>> store["scale"].detach(), store.get_param("scale", torch.zeros(2)).detach()
    (tensor([3., 4.]), tensor([3., 4.]))
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._params: dict[str, torch.Tensor] = {}
        self._constraints: dict[str, Constraint] = {}
        self._param_to_name: dict[torch.Tensor, str] = {}
        self._slots: dict[str, _Slot] = {}

    # -- dict interface over constrained values ---------------------------------------------

    def __getitem__(self, name: str) -> torch.Tensor:
        """Return the constrained value of ``name``, a new tensor unless the map is the identity.

        :raises KeyError: if ``name`` is not in the store.
        """
        # Hot path of every param site, so no lock: `with RLock` alone took ~300 ns against ~280 ns
        # for this whole read of a real param (timeit, dev box). One slot, two identity checks.
        slot = self._slots.get(name)
        if slot is None or slot[0] is not self._params.get(name) or slot[1] is not self._constraints.get(name):
            slot = self._new_slot(name)
        leaf, _, forward = slot
        value = leaf if forward is None else forward(leaf)
        setattr(value, "unconstrained", _LeafRef(leaf))
        return value

    def __setitem__(self, name: str, new_constrained_value: torch.Tensor) -> None:
        """Set ``name`` from a constrained value, keeping its constraint (``real`` if new)."""
        with self._lock:
            constraint = self._constraints.get(name, constraints.real)
            self._store(name, unconstrain(name, new_constrained_value, constraint), constraint)

    def __delitem__(self, name: str) -> None:
        """Remove ``name`` from the store.

        :raises KeyError: if ``name`` is not in the store.
        """
        with self._lock:
            leaf = self._params.pop(name)
            self._drop_reverse_entry(leaf, name)
            self._constraints.pop(name, None)
            self._slots.pop(name, None)

    def _discard(self, name: str) -> None:
        """Remove ``name`` if present (rolls back a param whose creating call failed)."""
        with self._lock:
            if name in self._params:
                del self[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __len__(self) -> int:
        return len(self._params)

    def __bool__(self) -> bool:
        return bool(self._params)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> KeysView[str]:
        """Return a snapshot of the param names, in insertion order."""
        with self._lock:
            return self._params.copy().keys()

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Iterate over ``(name, constrained value)`` for the names present when called."""
        for name in self.keys():
            try:
                value = self[name]
            except KeyError:
                if name in self._params:  # malformed state (no constraint), as Pyro raises
                    raise
                continue  # deleted by another thread since the snapshot
            yield name, value

    def values(self) -> Iterator[torch.Tensor]:
        """Iterate over the constrained values, as :meth:`items`."""
        for _, value in self.items():
            yield value

    def clear(self) -> None:
        """Remove every param."""
        with self._lock:
            self._params = {}
            self._constraints = {}
            self._param_to_name = {}
            self._slots = {}

    def setdefault(
        self,
        name: str,
        init_constrained_value: InitValue,
        constraint: Constraint = constraints.real,
    ) -> torch.Tensor:
        """Return the constrained value of ``name``, creating it first if it is absent.

        :param name: the param's name.
        :param init_constrained_value: its initial constrained value, or a function returning it,
            called (exactly once) only if ``name`` is absent.
        :param constraint: the param's constraint; like the initial value, ignored if ``name``
            already exists.
        :raises AttributeError: (or another builtin error, as Pyro) if the initial value is not a
            tensor the constraint's inverse transform accepts; the message names the param.
        """
        slot = self._slots.get(name)  # the lock-free read of __getitem__, inlined for speed
        if slot is None or slot[0] is not self._params.get(name) or slot[1] is not self._constraints.get(name):
            with self._lock:
                if name not in self._params:
                    init = init_constrained_value() if callable(init_constrained_value) else init_constrained_value
                    leaf = unconstrain(name, init, constraint)  # first: its errors are Pyro's
                    if _distribution_validation_enabled():
                        _check_init(name, init, constraint)
                    self._store(name, leaf, constraint)
                slot = self._new_slot(name)
        leaf, _, forward = slot
        value = leaf if forward is None else forward(leaf)
        setattr(value, "unconstrained", _LeafRef(leaf))
        return value

    # -- Pyro's older interface -------------------------------------------------------------

    def get_param(
        self,
        name: str,
        init_tensor: InitValue | None = None,
        constraint: Constraint = constraints.real,
        event_dim: int | None = None,
    ) -> torch.Tensor:
        """Return ``store[name]``, or :meth:`setdefault` it when ``init_tensor`` is given.

        This is the function behind every param site.

        :param event_dim: accepted for Pyro compatibility and ignored.
        :raises KeyError: if ``name`` is absent and ``init_tensor`` is ``None``.
        """
        if init_tensor is None:
            return self[name]
        return self.setdefault(name, init_tensor, constraint)

    def named_parameters(self) -> ItemsView[str, torch.Tensor]:
        """Return a snapshot of ``(name, unconstrained leaf)`` pairs."""
        with self._lock:
            return self._params.copy().items()

    def get_all_param_names(self) -> KeysView[str]:
        """Deprecated: use :meth:`keys`."""
        warn_at_caller(
            "ParamStore.get_all_param_names() is deprecated; use .keys() instead.",
            DeprecationWarning,
        )
        return self.keys()

    def replace_param(self, param_name: str, new_param: torch.Tensor, old_param: torch.Tensor) -> None:
        """Deprecated: use ``store[param_name] = new_param``.

        :raises AssertionError: if ``old_param`` is not a current read of ``param_name``.
        """
        warn_at_caller(
            "ParamStore.replace_param() is deprecated; use .__setitem__() instead.",
            DeprecationWarning,
        )
        with self._lock:
            if self._params[param_name] is not getattr(old_param, "unconstrained")():
                raise AssertionError(f"param {param_name!r}: old_param is not its current value")
            self[param_name] = new_param

    def match(self, name: str) -> dict[str, torch.Tensor]:
        """Return the constrained values of the params whose names match the regex ``name``.

        Matching uses :func:`re.match`, so it is anchored at the start of the name only.
        """
        pattern = re.compile(name)
        return {key: value for key, value in self.items() if pattern.match(key)}

    def param_name(self, p: torch.Tensor) -> str | None:
        """Return the name of the unconstrained leaf ``p``, or ``None`` if it is not stored."""
        return self._param_to_name.get(p)

    # -- persistence ------------------------------------------------------------------------

    def get_state(self) -> StateDict:
        """Return shallow copies of the name -> leaf and name -> constraint maps.

        Nothing in the store or on its tensors changes (Pyro strips ``.unconstrained`` from the
        live leaves, which breaks values read before a save); the links pickle as they are.
        """
        with self._lock:
            return {"params": self._params.copy(), "constraints": self._constraints.copy()}

    def set_state(self, state: StateDict) -> None:
        """Merge a state from :meth:`get_state` into the store (existing names are replaced).

        A constraint of the type of ``constraints.real`` becomes the ``constraints.real`` singleton.

        :raises AssertionError: if ``state`` is not a dict with exactly these two keys (as Pyro).
        """
        _check_state(state)
        with self._lock:
            for name in (*state["params"], *state["constraints"]):
                self._slots.pop(name, None)
            for name, leaf in state["params"].items():
                old = self._params.get(name)
                self._params[name] = leaf
                if old is not None and old is not leaf:
                    self._drop_reverse_entry(old, name)
                self._param_to_name[leaf] = name
            for name, constraint in state["constraints"].items():
                self._constraints[name] = _loaded_constraint(constraint)

    def save(self, filename: str | os.PathLike[str]) -> None:
        """Write :meth:`get_state` to ``filename`` with :func:`torch.save`."""
        _write_state(self.get_state(), filename)

    def load(self, filename: str | os.PathLike[str], map_location: MAP_LOCATION = None) -> None:
        """Merge a state written by :meth:`save` into the store.

        :param map_location: passed to :func:`torch.load` (which runs with ``weights_only=False``:
            load only files you trust).
        """
        self.set_state(_read_state(filename, map_location))

    @contextmanager
    def scope(self, state: StateDict | None = None) -> Iterator[StateDict]:
        """Swap in ``state`` (empty if ``None``) for the duration of a ``with`` block.

        On normal exit ``state`` is updated in place with the store's state, so it can be passed to
        a later ``scope``; on any exit the store goes back to what it held before.

        :Example:

        >>> store = ParamStoreDict()
        >>> _ = store.setdefault("x", torch.zeros(1))
        >>> with store.scope() as inner:
        ...     _ = store.setdefault("y", torch.ones(1))
        ...     sorted(store.keys())
        ['y']
        >>> sorted(store.keys()), sorted(inner["params"])
        (['x'], ['y'])
        """
        if state is None:
            state = {"params": {}, "constraints": {}}
        old_state = self.get_state()
        try:
            with self._lock:
                self.clear()
                self.set_state(state)
            yield state
            state.update(self.get_state())
        finally:
            with self._lock:
                self.clear()
                self.set_state(old_state)

    # -- pickling (the lock cannot be pickled) ---------------------------------------------

    def __getstate__(self) -> StateDict:
        return self.get_state()

    def __setstate__(self, state: StateDict) -> None:
        self.__dict__.update(ParamStoreDict().__dict__)
        self.set_state(state)

    # -- helpers (call with the lock held) ---------------------------------------------------

    def _new_slot(self, name: str) -> _Slot:
        """Build the read slot of ``name`` from the maps (takes the lock itself).

        :raises KeyError: if ``name`` is missing from either map.
        """
        with self._lock:
            leaf = self._params[name]
            constraint = self._constraints[name]
            old = self._slots.get(name)
            forward = old[2] if old is not None and old[1] is constraint else forward_map(constraint)
            slot = self._slots[name] = (leaf, constraint, forward)
            return slot

    def _store(self, name: str, leaf: torch.Tensor, constraint: Constraint) -> None:
        # Ordered so that an interrupt at any point leaves a usable store: the reverse entry
        # and the constraint come first, the name -> leaf entry (what reads check) last.
        old = self._params.get(name)
        self._param_to_name[leaf] = name
        self._constraints[name] = constraint
        self._params[name] = leaf
        if old is not None and old is not leaf:
            self._drop_reverse_entry(old, name)

    def _drop_reverse_entry(self, leaf: torch.Tensor, name: str) -> None:
        # Only if it still points here: one leaf may be stored under several names.
        if self._param_to_name.get(leaf) == name:
            del self._param_to_name[leaf]

