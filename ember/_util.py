"""Small stateless helpers at the bottom of the import graph: RNG seeding and NaN/inf warnings.

Public under :mod:`ember.util` (Pyro's ``pyro.util``); modules inside Ember import them from here,
because :mod:`ember.util` also re-exports the trace checks of :mod:`ember.infer.util` and so sits
at the top of the import graph.
"""

from __future__ import annotations

import math
import random
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, overload

import torch
from torch.jit._trace import TracerWarning

__all__ = [
    "get_rng_state",
    "ignore_jit_warnings",
    "jit_iter",
    "set_rng_seed",
    "set_rng_state",
    "torch_isinf",
    "torch_isnan",
    "warn_if_inf",
    "warn_if_nan",
]

try:
    import numpy as _np

    _HAS_NUMPY = True
except ImportError:  # numpy is optional: seed it only when it is installed
    _HAS_NUMPY = False


def set_rng_seed(rng_seed: int) -> None:
    """Seed torch, Python's :mod:`random` and (if installed) numpy.

    :param rng_seed: the seed.

    >>> set_rng_seed(0); a = torch.rand(()); set_rng_seed(0)
    >>> bool(torch.rand(()) == a)
    True
    """
    torch.manual_seed(rng_seed)
    random.seed(rng_seed)
    if _HAS_NUMPY:
        _np.random.seed(rng_seed)


def get_rng_state() -> dict[str, Any]:
    """The current torch, :mod:`random` and numpy RNG states, for :func:`set_rng_state`."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "random": random.getstate()}
    if _HAS_NUMPY:
        state["numpy"] = _np.random.get_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states captured by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["random"])
    if _HAS_NUMPY and "numpy" in state:
        _np.random.set_state(state["numpy"])


def _caller() -> tuple[str, int]:
    try:
        frame = sys._getframe(2)
    except ValueError:
        return "sys", 1
    return frame.f_code.co_filename, frame.f_lineno


def _scalar(value: torch.Tensor | float) -> float | None:
    if isinstance(value, torch.Tensor):
        return float(value.item()) if value.numel() == 1 else None
    return float(value)


def warn_if_nan(value: torch.Tensor | float, msg: str = "", *, where: tuple[str, int] | None = None) -> None:
    """Warn (``UserWarning``) if ``value``, or later its gradient, contains a NaN.

    :param value: a number or tensor.
    :param msg: what the value is, for the warning text.
    """
    where = _caller() if where is None else where
    if isinstance(value, torch.Tensor) and value.requires_grad:
        value.register_hook(lambda grad: warn_if_nan(grad, "backward " + msg, where=where))  # type: ignore[no-untyped-call]  # torch leaves register_hook unannotated
    scalar = _scalar(value)
    has_nan = math.isnan(scalar) if scalar is not None else bool(torch.isnan(torch.as_tensor(value)).any())
    if has_nan:
        warnings.warn_explicit(f"Encountered NaN{': ' + msg if msg else '.'}", UserWarning, *where)


def warn_if_inf(
    value: torch.Tensor | float,
    msg: str = "",
    allow_posinf: bool = False,
    allow_neginf: bool = False,
    *,
    where: tuple[str, int] | None = None,
) -> None:
    """Warn (``UserWarning``) if ``value``, or later its gradient, contains a disallowed inf."""
    where = _caller() if where is None else where
    if isinstance(value, torch.Tensor) and value.requires_grad:
        value.register_hook(  # type: ignore[no-untyped-call]  # torch leaves register_hook unannotated
            lambda grad: warn_if_inf(grad, "backward " + msg, allow_posinf, allow_neginf, where=where)
        )
    scalar = _scalar(value)
    for sign, allowed in (("+", allow_posinf), ("-", allow_neginf)):
        if allowed:
            continue
        inf = math.inf if sign == "+" else -math.inf
        found = scalar == inf if scalar is not None else bool((torch.as_tensor(value) == inf).any())
        if found:
            warnings.warn_explicit(f"Encountered {sign}inf{': ' + msg if msg else '.'}", UserWarning, *where)


@overload
def torch_isnan(x: float) -> bool: ...
@overload
def torch_isnan(x: torch.Tensor) -> torch.Tensor: ...
def torch_isnan(x: torch.Tensor | float) -> torch.Tensor | bool:
    """Whether a number is NaN, or (as a 0-dim bool tensor) whether a tensor holds any NaN.

    :param x: a number or a tensor.

    >>> torch_isnan(float("nan")), torch_isnan(torch.tensor([0.0, float("nan")]))
    (True, tensor(True))
    """
    if not isinstance(x, torch.Tensor):
        return bool(x != x)
    return torch.isnan(x).any()


@overload
def torch_isinf(x: float) -> bool: ...
@overload
def torch_isinf(x: torch.Tensor) -> torch.Tensor: ...
def torch_isinf(x: torch.Tensor | float) -> torch.Tensor | bool:
    """Whether a number is infinite, or whether a tensor holds a ``+inf`` or a ``-inf``.

    :param x: a number or a tensor.

    >>> torch_isinf(-math.inf), bool(torch_isinf(torch.tensor([1.0, math.inf])))
    (True, True)
    """
    if not isinstance(x, torch.Tensor):
        return x == math.inf or x == -math.inf
    positive: torch.Tensor = (x == math.inf).any()
    return positive if positive else (x == -math.inf).any()


WarningFilter = str | tuple[str, type[Warning]]


@contextmanager
def ignore_jit_warnings(filter: Sequence[WarningFilter] | None = None) -> Iterator[None]:
    """Silence ``torch.jit`` tracer warnings inside, while a ``torch.jit.trace`` is running.

    Outside tracing nothing is filtered.

    :param filter: the warnings to silence: message patterns (of ``TracerWarning``) or
        ``(message pattern, category)`` pairs; ``None`` silences every ``TracerWarning``.

    >>> with ignore_jit_warnings():
    ...     pass
    """
    if not torch._C._get_tracing_state():
        yield
        return
    with warnings.catch_warnings():
        if filter is None:
            warnings.filterwarnings("ignore", category=TracerWarning)
        else:
            for entry in filter:
                message, category = entry if isinstance(entry, tuple) else (entry, TracerWarning)
                warnings.filterwarnings("ignore", message=message, category=category)
        yield


def jit_iter(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The slices of ``tensor`` along its first dim, without the tracer's iteration warnings.

    >>> jit_iter(torch.tensor([1, 2]))
    [tensor(1), tensor(2)]
    """
    with warnings.catch_warnings():
        # torch raises "Iterating over a tensor" as a RuntimeWarning, not a TracerWarning.
        warnings.filterwarnings("ignore", "Iterating over a tensor")
        warnings.filterwarnings("ignore", category=TracerWarning)
        return list(tensor)
