"""``PyroModule``: a :class:`torch.nn.Module` whose attributes are Ember params and samples.

Inside a call of a :class:`PyroModule` (its ``__call__`` or a
:func:`~ember.nn.module.pyro_method`), reading an attribute declared with :class:`PyroParam`
or set to an :class:`torch.nn.Parameter` records an ``ember.param`` site, and reading a
:class:`PyroSample` attribute records an ``ember.sample`` site. Sites are named by the
attribute's dotted path from the root module, e.g. ``"AutoNormal.locs.x"``. The module and the
global param store are kept in sync on every ``setattr``, ``getattr`` and ``delattr`` of such an
attribute, in the same way Pyro does.

This module holds the class and ``PyroModule[base]``, which builds its mixins;
:mod:`ember.nn.module`, the public path, adds the functions that act on modules.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, TypeVar, cast

import torch
from torch.distributions import constraints, transform_to

from ember.nn._declarations import PyroParam, PyroSample
from ember.nn._sync import (
    _as_parameter,
    _check_constraint,
    _constrain,
    _Context,
    _FlatWeightsDescriptor,
    _make_name,
    _store_leaf,
    _to_parameter,
    _Transform,
)
from ember.poutine.runtime import _PYRO_PARAM_STORE
from ember.primitives import deterministic, module, param, sample

__all__ = ["PyroModule"]

_N = TypeVar("_N", bound=torch.nn.Module)


def _pyro_members(mod: torch.nn.Module) -> Iterator[tuple[str, Any]]:
    """A module's own parameters, a :class:`PyroParam` by its constrained name and value."""
    for name, value in mod._parameters.items():
        if isinstance(mod, PyroModule) and name.endswith("_unconstrained"):
            constrained_name = name[: -len("_unconstrained")]
            if constrained_name in mod._pyro_params:
                yield constrained_name, getattr(mod, constrained_name)
                continue
        yield name, value


def _new_mixin_instance(base: type[torch.nn.Module]) -> PyroModule:
    """Unpickling helper: an empty instance of ``PyroModule[base]``, filled in by its state."""
    cls = _mixin(base)
    instance: PyroModule = cls.__new__(cls)
    return instance


class _PyroModuleMeta(type):
    """Metaclass of :class:`PyroModule`: ``PyroModule[nn.Linear]`` builds a mixin class."""

    _pyro_mixin_cache: dict[type[torch.nn.Module], type[PyroModule]] = {}

    def __getitem__(cls, base: type[_N]) -> type[_N]:
        # Typed as ``base`` itself, so that ``PyroModule[nn.Linear](3, 2)`` checks its arguments
        # and attributes against ``nn.Linear``; the class is a PyroModule subclass as well.
        return cast("type[_N]", _mixin(base))


def _mixin(base: type[torch.nn.Module]) -> type[PyroModule]:
    """Build (once) the class ``PyroModule[base]``."""
    assert isinstance(base, type) and issubclass(base, torch.nn.Module)
    if issubclass(base, PyroModule):
        return base
    if base is torch.nn.Module:
        return PyroModule
    cached = _PyroModuleMeta._pyro_mixin_cache.get(base)
    if cached is not None:
        return cached
    mixins = [_mixin(b) for b in base.__bases__ if issubclass(b, torch.nn.Module)]

    def __reduce__(self: PyroModule) -> tuple[Any, ...]:
        state = getattr(self, "__getstate__", self.__dict__.copy)()
        return _new_mixin_instance, (base,), state

    result = cast(
        "type[PyroModule]",
        _PyroModuleMeta("Pyro" + base.__name__, (base, *mixins), {"__reduce__": __reduce__}),
    )
    result.__qualname__ = result.__name__
    _PyroModuleMeta._pyro_mixin_cache[base] = result
    return result


class PyroModule(torch.nn.Module, metaclass=_PyroModuleMeta):
    """A :class:`torch.nn.Module` whose attributes can be Ember params and samples.

    * ``m.x = PyroParam(init, constraint)`` or ``m.x = nn.Parameter(init)`` declares a
      learnable attribute; reading it in a call records an ``ember.param`` site.
    * ``m.x = PyroSample(prior)`` declares a random attribute; reading it in a call records an
      ``ember.sample`` site, cached for the rest of the call.
    * A plain ``nn.Module`` attribute is registered with ``ember.module`` when read in a call.

    Sites are named by dotted attribute paths from the root, which is named ``name``. The param
    store is synchronised at each set, get and delete: an existing store value wins over the
    module's (so two modules with the same name share data, and a module rebuilt under an old
    name picks up the old values); otherwise the module's value is copied into the store.
    ``PyroModule[nn.Linear]`` is the class ``nn.Linear`` with this behaviour mixed in, and
    :func:`to_pyro_module_` converts an existing module in place.

    :param name: the name of a root module; ignored for submodules of another PyroModule.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> from ember import poutine
    >>> class Model(PyroModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.loc = PyroSample(dist.Normal(0.0, 1.0))
    ...         self.scale = PyroParam(torch.tensor(1.0), constraint=constraints.positive)
    ...     def forward(self):
    ...         return ember.sample("y", dist.Normal(self.loc, self.scale))
    >>> tr = poutine.trace(Model()).get_trace()
    >>> [name for name in tr.nodes if name not in ("_INPUT", "_RETURN")]
    ['loc', 'scale', 'y']
    """

    _pyro_name: str
    _pyro_context: _Context
    _pyro_params: OrderedDict[str, tuple[constraints.Constraint, int | None]]
    _pyro_samples: OrderedDict[str, Any]

    def __init__(self, name: str = "") -> None:
        self._pyro_name = name
        self._pyro_context = _Context()  # shared with every sub-PyroModule
        self._pyro_params = OrderedDict()
        self._pyro_samples = OrderedDict()
        super().__init__()

    def add_module(self, name: str, module: torch.nn.Module | None) -> None:
        """Add a child module; a PyroModule child joins this module's naming and context."""
        if isinstance(module, PyroModule):
            module._pyro_set_supermodule(_make_name(self._pyro_name, name), self._pyro_context)
        super().add_module(name, module)

    def named_pyro_params(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Any]]:
        """Like ``named_parameters``, but a :class:`PyroParam` is yielded constrained, by its own name.

        :param prefix: prepended to every name.
        :param recurse: include the parameters of submodules.
        """
        yield from self._named_members(_pyro_members, prefix=prefix, recurse=recurse)

    def _pyro_set_supermodule(self, name: str, context: _Context) -> None:
        self._pyro_name = name
        self._pyro_context = context
        for key, child in self._modules.items():
            if isinstance(child, PyroModule):
                assert not child._pyro_context.used, f"submodule {name} has executed outside of supermodule"
                child._pyro_set_supermodule(_make_name(name, key), context)

    def _pyro_get_fullname(self, name: str) -> str:
        assert self.__dict__["_pyro_context"].used, "fullname is not yet defined"
        return _make_name(self.__dict__["_pyro_name"], name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._pyro_context:
            return super().__call__(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attributes = self.__dict__
        pyro_params = attributes.get("_pyro_params")
        if pyro_params is not None and name in pyro_params:
            return self._get_pyro_param(name, *pyro_params[name])
        pyro_samples = attributes.get("_pyro_samples")
        if pyro_samples is not None and name in pyro_samples:
            return self._get_pyro_sample(name, pyro_samples[name])

        result = super().__getattr__(name)
        if isinstance(result, torch.nn.Parameter):
            if self._pyro_context.active and not name.endswith("_unconstrained"):
                param(self._pyro_get_fullname(name), result)  # registers it; the module's value wins
        elif isinstance(result, PyroModule):
            if not result._pyro_name:  # a submodule converted in place by to_pyro_module_
                result._pyro_set_supermodule(_make_name(self._pyro_name, name), self._pyro_context)
        elif isinstance(result, torch.nn.Module) and self._pyro_context.active:
            module(self._pyro_get_fullname(name), result)
        return result

    def _get_pyro_param(self, name: str, constraint: constraints.Constraint, event_dim: int | None) -> torch.Tensor:
        key = name + "_unconstrained"
        # Straight from the parameter table: getattr would re-enter __getattr__ for it.
        unconstrained: torch.Tensor | None = self._parameters.get(key)
        if unconstrained is None:
            unconstrained = getattr(self, key)
        if not self._pyro_context.active:  # no call yet, so no full name: read the module's value
            return _constrain(unconstrained, constraint)
        fullname = self._pyro_get_fullname(name)
        stored = _PYRO_PARAM_STORE._params.get(fullname)
        if stored is None:
            _store_leaf(fullname, unconstrained, constraint)  # module -> store
        elif stored is not unconstrained:
            if not isinstance(stored, torch.nn.Parameter):
                stored = torch.nn.Parameter(stored)  # same storage: only the type changes
                _store_leaf(fullname, stored)
            torch.nn.Module.__setattr__(self, name + "_unconstrained", stored)  # store -> module
        # As in Pyro, the read names no constraint: the store already holds the right one.
        return param(fullname, event_dim=event_dim)

    def _get_pyro_sample(self, name: str, prior: Any) -> Any:
        context = self._pyro_context
        if not context.active:  # no call yet, so no full name: draw without a site
            if not hasattr(prior, "sample"):
                prior = prior(self)
            return prior if isinstance(prior, torch.Tensor) else prior()
        fullname = self._pyro_get_fullname(name)
        value = context.get(fullname)
        if value is None:
            if not hasattr(prior, "sample"):
                prior = prior(self)
            if isinstance(prior, torch.Tensor):
                value = deterministic(fullname, prior)
            else:
                value = sample(fullname, prior)
            context.set(fullname, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, PyroModule):
            self._forget(name)
            self.add_module(name, value)
        elif isinstance(value, PyroParam):
            init, constraint, event_dim = value
            assert init is not None, "PyroParam needs an initial value"
            _check_constraint(name, constraint)  # before the old value is dropped
            self._forget(name)
            if self._pyro_context.active:
                fullname = self._pyro_get_fullname(name)
                param(fullname, init, constraint=constraint, event_dim=event_dim)
                # Read back without event_dim: the whole leaf, never a plate's slice of it.
                leaf = _as_parameter(fullname, param(fullname))
            else:
                leaf = _to_parameter(init, constraint)
            # Declared only once its value exists, so a bad initial value leaves no half-made attribute.
            self._pyro_params[name] = constraint, event_dim
            super().__setattr__(name + "_unconstrained", leaf)
        elif isinstance(value, torch.nn.Parameter):
            self._forget(name)
            if self._pyro_context.active:
                fullname = self._pyro_get_fullname(name)
                stored = param(fullname, value)
                if not isinstance(stored, torch.nn.Parameter):
                    stored = _as_parameter(fullname, stored)
                value = stored
            super().__setattr__(name, value)
        elif isinstance(value, torch.Tensor) and name in self._pyro_params:
            constraint, _ = self._pyro_params[name]  # a new value for an existing PyroParam
            unconstrained = getattr(self, name + "_unconstrained")
            with torch.no_grad():
                unconstrained.data = cast(_Transform, transform_to(constraint).inv)(value.detach())
        elif isinstance(value, PyroSample):
            self._forget(name)
            self.__dict__["_pyro_samples"][name] = value.prior
        else:
            super().__setattr__(name, value)

    def _forget(self, name: str) -> None:
        try:
            delattr(self, name)
        except AttributeError:
            pass

    def __delattr__(self, name: str) -> None:
        used = self._pyro_context.used
        if name in self._parameters:
            del self._parameters[name]
            if used:
                self._drop_from_store(self._pyro_get_fullname(name))
        elif name in self._pyro_params:
            delattr(self, name + "_unconstrained")
            del self._pyro_params[name]
            if used:
                self._drop_from_store(self._pyro_get_fullname(name))
        elif name in self._pyro_samples:
            del self._pyro_samples[name]
        elif name in self._modules:
            del self._modules[name]
            if used:
                # The submodule's own params: "<prefix>.x" (PyroModule) or "<prefix>$$$x"
                # (nn.Module). Pyro matches the bare prefix, which also hits e.g. "<prefix>2.x".
                prefix = self._pyro_get_fullname(name)
                for key in list(_PYRO_PARAM_STORE.keys()):
                    if key == prefix or key.startswith((prefix + ".", prefix + "$$$")):
                        del _PYRO_PARAM_STORE[key]
        else:
            super().__delattr__(name)

    @staticmethod
    def _drop_from_store(fullname: str) -> None:
        if fullname in _PYRO_PARAM_STORE:
            del _PYRO_PARAM_STORE[fullname]

    def __getstate__(self) -> dict[str, Any]:
        # The store's weak references cannot be pickled.
        for parameter in self.parameters(recurse=True):
            parameter.__dict__.pop("unconstrained", None)
        state: dict[str, Any] = getattr(super(), "__getstate__", self.__dict__.copy)()
        return state


setattr(_mixin(torch.nn.RNNBase), "_flat_weights", _FlatWeightsDescriptor())
