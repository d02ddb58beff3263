"""Names of module parameters in the store: ``"<module name>$$$<parameter name>"``."""

from __future__ import annotations

__all__ = [
    "module_from_param_with_module_name",
    "normalize_param_name",
    "param_with_module_name",
    "user_param_name",
]

# Separates a module's name from its own parameter's name, e.g. "encoder$$$fc.weight".
_MODULE_NAMESPACE_DIVIDER = "$$$"


def param_with_module_name(pyro_name: str, param_name: str) -> str:
    """Return the store name of a module's parameter: ``pyro_name + "$$$" + param_name``."""
    return _MODULE_NAMESPACE_DIVIDER.join([pyro_name, param_name])


def module_from_param_with_module_name(param_name: str) -> str:
    """Return the module part of a store name (the whole name if it has no ``"$$$"``)."""
    return param_name.split(_MODULE_NAMESPACE_DIVIDER)[0]


def user_param_name(param_name: str) -> str:
    """Return the parameter part of a store name (the whole name if it has no ``"$$$"``)."""
    if _MODULE_NAMESPACE_DIVIDER in param_name:
        return param_name.split(_MODULE_NAMESPACE_DIVIDER)[1]
    return param_name


def normalize_param_name(name: str) -> str:
    """Replace each ``"$$$"`` with ``"."``."""
    return name.replace(_MODULE_NAMESPACE_DIVIDER, ".")
