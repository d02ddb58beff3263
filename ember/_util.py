"""Small stateless helpers at the bottom of the import graph: RNG seeding, NaN/inf warnings,
timing, optional context managers and the experimental-feature warning.

Public under :mod:`ember.util` (Pyro's ``pyro.util``); modules inside Ember import them from here,
because :mod:`ember.util` also re-exports the trace checks of :mod:`ember.infer.util` and so sits
at the top of the import graph.
"""

from __future__ import annotations

import math
import os
import random
import sys
import timeit
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, overload

import torch
from torch.jit._trace import TracerWarning

__all__ = [
    "ExperimentalWarning",
    "get_rng_state",
    "ignore_experimental_warning",
    "ignore_jit_warnings",
    "jit_iter",
    "optional",
    "set_rng_seed",
    "set_rng_state",
    "timed",
    "torch_float",
    "torch_isinf",
    "torch_isnan",
    "warn_at_caller",
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


_EMBER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _frames_inside_ember() -> int:
    """How many frames above the caller's caller still run Ember's own code."""
    depth = 0
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_EMBER_DIR):
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]  # None ends the loop
    return depth


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside Ember: the user's call.

    Ember's warnings are about the user's program, so they point at the user's line
    (Python 3.11 has no ``skip_file_prefixes``; the stack level is counted instead).
    """
    warnings.warn(message, category, stacklevel=_frames_inside_ember() + 2)


def _caller() -> tuple[str, int]:
    """File and line of the first frame outside Ember (for warnings raised later by hooks)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_EMBER_DIR):
        frame = frame.f_back
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


class ExperimentalWarning(UserWarning):
    """Warns that a feature is experimental: its interface may change."""


@contextmanager
def ignore_experimental_warning() -> Iterator[None]:
    """Silence :class:`ExperimentalWarning` inside the block.

    >>> with ignore_experimental_warning():
    ...     warnings.warn("new", ExperimentalWarning)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        yield


class optional:
    """Enter ``context_manager`` only if ``condition`` holds.

    :param context_manager: the context manager to enter (or not).
    :param condition: whether to enter it.

    >>> with optional(torch.no_grad(), False):
    ...     torch.is_grad_enabled()
    True
    """

    def __init__(self, context_manager: AbstractContextManager[Any], condition: bool) -> None:
        self.context_manager = context_manager
        self.condition = condition

    def __enter__(self) -> Any:
        if self.condition:
            return self.context_manager.__enter__()
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> bool | None:
        if self.condition:
            return self.context_manager.__exit__(exc_type, exc_val, exc_tb)
        return None


class timed:
    """Time a block: ``start``, ``end`` and ``elapsed`` (seconds) are set on exit.

    >>> with timed() as t:
    ...     _ = sum(range(10))
    >>> t.elapsed >= 0
    True
    """

    start: float
    end: float
    elapsed: float

    def __enter__(self, timer: Any = timeit.default_timer) -> timed:
        self.start = timer()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None) -> None:
        self.end = timeit.default_timer()
        self.elapsed = self.end - self.start


@overload
def torch_float(x: float | int) -> float: ...
@overload
def torch_float(x: torch.Tensor) -> torch.Tensor: ...
def torch_float(x: torch.Tensor | float | int) -> torch.Tensor | float:
    """``x`` as a float tensor, or as a Python float.

    >>> torch_float(torch.tensor([1, 2])), torch_float(3)
    (tensor([1., 2.]), 3.0)
    """
    return x.float() if isinstance(x, torch.Tensor) else float(x)
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
