"""Checks of a param's initial value against its declared constraint (under validation).

Pyro stores an initial value that violates its constraint as it comes (NaN after the inverse
transform, or a silently renormalised simplex); the store calls :func:`_check_init` instead,
when distribution validation is on, so the error names the param at its creating call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch.distributions import constraints
from torch.distributions.constraints import Constraint

from ember._util import warn_at_caller

__all__: list[str] = []


def _check_init(name: str, init: object, constraint: Constraint) -> None:
    """Reject an initial value outside its constraint (Pyro stores NaN or renormalises silently).

    :raises ValueError: naming the param, the constraint and the value.
    """
    if not isinstance(init, torch.Tensor) or constraint is constraints.real:
        # A non-tensor: ``unconstrain`` rejects it with Pyro's error type. ``real``: NaN inits
        # are how programs test NaN handling, and nothing else can violate it.
        return
    try:
        with torch.no_grad():
            check = cast(Callable[[torch.Tensor], torch.Tensor], constraint.check)  # torch leaves it unannotated
            ok = bool(check(init).all())
            if not ok and isinstance(constraint, type(constraints.simplex)):
                # Positive weights off the simplex are normalised, as in Pyro (the pyroapi
                # conformance suite relies on it); only weights that cannot be are rejected.
                normalisable = bool((init >= 0).all() and init.isfinite().all() and (init.sum(-1) > 0).all())
                if normalisable:
                    warn_at_caller(
                        f"param {name!r}: initial value {_shown(init)} is not on the simplex; "
                        "it is normalised to sum to 1"
                    )
                    return
    except (ValueError, NotImplementedError, RuntimeError, TypeError):
        return  # a dependent constraint, or one that cannot check this value: nothing to say
    if not ok:
        raise ValueError(f"param {name!r}: initial value violates its constraint {constraint}: {_shown(init)}")


def _shown(value: torch.Tensor) -> str:
    text = repr(value.detach())
    return text if len(text) <= 300 else text[:300] + "..."
