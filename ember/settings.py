"""Global settings, Pyro's ``pyro.settings``: a registry of named module attributes.

Each setting is an alias for an attribute deep inside a module (``"Class.attr"`` or a
module constant); :func:`get` reads it, :func:`set` writes it (after the setting's validator,
if any), :func:`context` overrides it for a block or a decorated function, and
:func:`register` declares a new one::

    ember.settings.get()                               # every setting, by alias
    ember.settings.set(validate_infer=False)
    with ember.settings.context(validate_poutine=False):
        ...

Registered by Ember: ``validate_distributions_pyro`` and ``validate_distributions_torch``
(both torch's default ``validate_args``, which Ember's distributions share),
``validate_infer`` and ``validate_poutine``. Pyro's ``cholesky_relative_jitter``,
``module_local_params`` and the ``binomial_approx_*`` settings are registered by the
modules that define them, once Ember has them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import Any

__all__ = ["context", "get", "register", "set"]

Validator = Callable[[Any], None]

_REGISTRY: dict[str, tuple[str, str, Validator | None]] = {}


def _lookup(alias: str) -> tuple[str, str, Validator | None]:
    try:
        return _REGISTRY[alias]
    except KeyError:
        raise KeyError(f"Unknown setting {alias!r}; registered settings: {sorted(_REGISTRY)}") from None


def get(alias: str | None = None) -> Any:
    """The value of one setting, or (with no alias) a dict of every setting's value.

    :param alias: a registered setting's name.
    :raises KeyError: for an unregistered alias.

    >>> get("validate_poutine") in (True, False)
    True
    """
    if alias is None:
        return {name: get(name) for name in sorted(_REGISTRY)}
    module, deepname, _ = _lookup(alias)
    value: Any = import_module(module)
    for name in deepname.split("."):
        value = getattr(value, name)
    return value


def set(**kwargs: Any) -> None:
    """Set settings by alias, each checked by its validator first.

    :raises KeyError: for an unregistered alias (nothing after it is set).
    """
    for alias, value in kwargs.items():
        module, deepname, validator = _lookup(alias)
        if validator is not None:
            validator(value)
        target: Any = import_module(module)
        *path, last = deepname.split(".")
        for name in path:
            target = getattr(target, name)
        setattr(target, last, value)


@contextmanager
def context(**kwargs: Any) -> Iterator[None]:
    """Override settings inside a block (or a decorated function), restoring them after.

    >>> old = get("validate_infer")
    >>> with context(validate_infer=not old):
    ...     get("validate_infer") == (not old)
    True
    >>> get("validate_infer") == old
    True
    """
    old = {alias: get(alias) for alias in kwargs}
    try:
        set(**kwargs)
        yield
    finally:
        set(**old)


def register(alias: str, modulename: str, deepname: str, validator: Validator | None = None) -> Callable[..., Any]:
    """Declare a setting: ``alias`` names the attribute ``deepname`` of module ``modulename``.

    Use it as a statement (``register("my_setting", __name__, "MY_SETTING")``) or as a
    decorator of a validator, which is called on the current value at once and on every
    new value.

    :param alias: a Python identifier (lower snake case preferred).
    :param modulename: the module holding the setting, usually ``__name__``.
    :param deepname: a dotted attribute path in it (``"CONSTANT"``, ``"Class.attribute"``).
    :param validator: raises on a bad value.
    :returns: the validator, or (without one) a decorator that registers one.
    :raises AssertionError: if ``alias`` is not an identifier (Pyro's type).
    """
    if not (isinstance(alias, str) and alias.isidentifier()):
        raise AssertionError(f"A setting alias must be a Python identifier, got {alias!r}")
    assert isinstance(modulename, str) and isinstance(deepname, str)
    _REGISTRY[alias] = modulename, deepname, validator
    if validator is None:
        return functools.partial(register, alias, modulename, deepname)
    validator(get(alias))
    return validator


def _validate_bool(value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"Expected a bool, got {type(value).__name__}")


# Pyro registers each setting in the module defining it; Ember's validation flags live in
# the runtime and in torch, which must not import this module, so they are declared here.
register("validate_distributions_pyro", "torch.distributions", "Distribution._validate_args", _validate_bool)
register("validate_distributions_torch", "torch.distributions", "Distribution._validate_args", _validate_bool)
register("validate_infer", "ember.poutine.runtime", "_INFER_VALIDATION_ENABLED", _validate_bool)
register("validate_poutine", "ember.poutine.runtime", "_VALIDATION_ENABLED", _validate_bool)
