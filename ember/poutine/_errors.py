"""Error types for bad input: Pyro's type where Pyro raises, and a ``ValueError`` too.

Kept apart from :mod:`ember.poutine.runtime` (which re-exports them) so the runtime module
holds only the handler-stack state and the message lifecycle.
"""

from __future__ import annotations

import torch

__all__ = ["not_a_distribution", "value_error_like"]


class _ZeroDivisionValueError(ZeroDivisionError, ValueError):
    """Bad input where Pyro raises a ``ZeroDivisionError``."""


class _RuntimeValueError(RuntimeError, ValueError):
    """Bad input where Pyro raises a ``RuntimeError`` (usually torch's, later)."""


class _TypeValueError(TypeError, ValueError):
    """Bad input where Pyro raises a ``TypeError``."""


class _IndexValueError(IndexError, ValueError):
    """Bad input where Pyro raises an ``IndexError``."""


_ALSO_VALUE_ERRORS: dict[type[Exception], type[Exception]] = {
    ZeroDivisionError: _ZeroDivisionValueError,
    RuntimeError: _RuntimeValueError,
    TypeError: _TypeValueError,
    IndexError: _IndexValueError,
}


def value_error_like(pyro_type: type[Exception], message: str) -> Exception:
    """An error for bad input that is both a ``ValueError`` and ``pyro_type``.

    Where Pyro fails on some bad input only later, or with a raw error of its own (a
    ``ZeroDivisionError`` for a plate of size 0, a ``RuntimeError`` from torch), Ember fails
    at once with a message naming the culprit. The error is an instance of ``pyro_type``, so
    code written against Pyro still catches it, and of ``ValueError``, the type Ember uses
    for bad input.

    :param pyro_type: the type Pyro raises for this input: ``ValueError``, ``ZeroDivisionError``,
        ``RuntimeError``, ``TypeError`` or ``IndexError``.
    :param message: the message.

    >>> error = value_error_like(ZeroDivisionError, "plate 'p': size cannot be zero")
    >>> isinstance(error, ZeroDivisionError), isinstance(error, ValueError)
    (True, True)
    """
    return _ALSO_VALUE_ERRORS.get(pyro_type, ValueError)(message)


def not_a_distribution(name: str, fn: object) -> TypeError:
    """The error for a sample site whose ``fn`` cannot compute a value (not a distribution)."""
    hint = ""
    if isinstance(fn, torch.distributions.Distribution):
        hint = f"; use ember.distributions.{type(fn).__name__} rather than torch.distributions.{type(fn).__name__}"
    return TypeError(
        f"'{type(fn).__name__}' object is not callable: sample site '{name}' expects a distribution, "
        f"got {fn!r}{hint}"
    )
