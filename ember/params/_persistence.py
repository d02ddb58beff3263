"""What the param store saves and loads: :class:`StateDict`, its file format, and its checks.

:class:`~ember.params.param_store.ParamStoreDict` keeps the locking and the merging of a state
into its maps; this module holds what is about a saved state itself: its type, how it is
written to and read from a file (:func:`torch.save`), and what a state from outside must
satisfy before it is merged.
"""

from __future__ import annotations

import os
from typing import TypedDict, cast

import torch
from torch.distributions import constraints
from torch.distributions.constraints import Constraint
from torch.serialization import MAP_LOCATION

__all__ = ["StateDict"]


class StateDict(TypedDict):
    """What :meth:`ParamStoreDict.get_state` returns and :meth:`ParamStoreDict.set_state` takes."""

    params: dict[str, torch.Tensor]
    constraints: dict[str, Constraint]


def _check_state(state: object) -> None:
    """Reject a state that is not a dict with exactly the keys ``params`` and ``constraints``.

    :raises AssertionError: as Pyro does, with Pyro's messages.
    """
    if not isinstance(state, dict):
        raise AssertionError("malformed ParamStore state")
    if set(state.keys()) != {"params", "constraints"}:
        raise AssertionError(f"malformed ParamStore keys {state.keys()}")


def _loaded_constraint(constraint: Constraint) -> Constraint:
    """``constraints.real`` itself for a constraint of its type, else ``constraint``."""
    if isinstance(constraint, type(constraints.real)):
        # Unpickled constraints are new objects; code compares with `is constraints.real`.
        return constraints.real
    return constraint


def _write_state(state: StateDict, filename: str | os.PathLike[str]) -> None:
    with open(filename, "wb") as output_file:
        torch.save(state, output_file)


def _read_state(filename: str | os.PathLike[str], map_location: MAP_LOCATION) -> StateDict:
    with open(filename, "rb") as input_file:
        # Constraints are arbitrary Python objects, which weights_only loading rejects.
        return cast(StateDict, torch.load(input_file, map_location, weights_only=False))
