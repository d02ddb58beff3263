"""``PyroModule``: a :class:`torch.nn.Module` whose attributes are Ember params and samples.

The class, its attribute protocol and ``PyroModule[base]`` live in :mod:`ember.nn._pyro_module`
and are re-exported here, Pyro's path for them; this module adds what acts on modules:
:func:`pyro_method`, :func:`clear`, :func:`to_pyro_module_` and :class:`PyroModuleList`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any, Callable, Concatenate, ParamSpec, TypeVar, overload

import torch

from ember.nn._declarations import PyroParam as PyroParam
from ember.nn._declarations import PyroSample as PyroSample
from ember.nn._pyro_module import PyroModule as PyroModule
from ember.nn._pyro_module import _mixin, _PyroModuleMeta

# Pickles of ``PyroModule[base]`` instances name this function by its module: kept importable
# here so that those written before it moved to ``_pyro_module`` still load.
from ember.nn._pyro_module import _new_mixin_instance as _new_mixin_instance
from ember.nn._sync import _Context

__all__ = [
    "PyroModule",
    "PyroModuleList",
    "PyroParam",
    "PyroSample",
    "clear",
    "pyro_method",
    "to_pyro_module_",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_M = TypeVar("_M", bound=PyroModule)


def pyro_method(fn: Callable[Concatenate[_M, _P], _T]) -> Callable[Concatenate[_M, _P], _T]:
    """Run a method of a :class:`PyroModule` inside the module's call context.

    Needed on public methods other than ``forward`` that read params or samples, so that they
    record sites under full names and draw each sample once.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> class Coin(PyroModule):
    ...     def __init__(self):
    ...         super().__init__("coin")
    ...         self.p = PyroSample(dist.Beta(2.0, 2.0))
    ...     @pyro_method
    ...     def twice(self):
    ...         return self.p, self.p
    >>> a, b = Coin().twice()
    >>> bool(a == b)
    True
    """

    @functools.wraps(fn)
    def in_context(self: _M, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with self._pyro_context:
            return fn(self, *args, **kwargs)

    return in_context


def clear(mod: PyroModule) -> None:
    """Delete the params and submodules of ``mod`` from it and from the param store.

    :param mod: the module to clear.
    """
    assert isinstance(mod, PyroModule)
    for name in list(mod._pyro_params):
        delattr(mod, name)
    for name in list(mod._parameters):
        delattr(mod, name)
    for name in list(mod._modules):
        delattr(mod, name)


def to_pyro_module_(m: torch.nn.Module, recurse: bool = True) -> None:
    """Turn the :class:`torch.nn.Module` ``m`` into a :class:`PyroModule`, in place.

    ``m``'s class becomes ``PyroModule[type(m)]`` and its parameters become params.

    :param m: the module to convert.
    :param recurse: convert its submodules too.
    :raises TypeError: if ``m`` is not an ``nn.Module``.

    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    >>> to_pyro_module_(net)
    >>> type(net).__name__, type(net[0]).__name__
    ('PyroSequential', 'PyroLinear')
    """
    if not isinstance(m, torch.nn.Module):
        raise TypeError(f"Expected an nn.Module instance but got a {type(m)}")
    if isinstance(m, PyroModule):
        if recurse:
            for name, child in list(m._modules.items()):
                assert child is not None
                to_pyro_module_(child)
                setattr(m, name, child)
        return
    m.__class__ = _mixin(m.__class__)
    assert isinstance(m, PyroModule)
    m._pyro_name = ""
    m._pyro_context = _Context()
    m._pyro_params = OrderedDict()
    m._pyro_samples = OrderedDict()
    for name, parameter in list(m._parameters.items()):
        setattr(m, name, parameter)
    for name, child in list(m._modules.items()):
        if recurse:
            assert child is not None
            to_pyro_module_(child)
        setattr(m, name, child)


class PyroModuleList(torch.nn.ModuleList, PyroModule):
    """``PyroModule[nn.ModuleList]``, whose slices are plain ``nn.ModuleList`` views.

    A slice built with ``type(self)`` would be a fresh root and rename its members' sites.

    :param modules: the modules to hold.

    >>> layers = PyroModuleList([PyroModule[torch.nn.Linear](2, 2) for _ in range(3)])
    >>> type(layers[0]).__name__, type(layers[1:]).__name__
    ('PyroLinear', 'ModuleList')
    """

    def __init__(self, modules: Any) -> None:
        super().__init__(modules)

    @overload
    def __getitem__(self, idx: slice) -> torch.nn.ModuleList: ...

    @overload
    def __getitem__(self, idx: int) -> torch.nn.Module: ...

    def __getitem__(self, idx: int | slice) -> torch.nn.Module | torch.nn.ModuleList:
        if isinstance(idx, slice):
            return torch.nn.ModuleList(list(self._modules.values())[idx])
        key: str = self._get_abs_string_index(idx)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        child = self._modules[key]
        assert child is not None
        return child


_PyroModuleMeta._pyro_mixin_cache[torch.nn.ModuleList] = PyroModuleList
