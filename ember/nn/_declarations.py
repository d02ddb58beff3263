"""The two attribute declarations a :class:`~ember.nn.module.PyroModule` understands.

:class:`PyroParam` marks a learnable attribute (read as an ``ember.param`` site) and
:class:`PyroSample` a random one (read as an ``ember.sample`` site). Both also work as
decorators on methods of a ``PyroModule`` subclass, which then build the value lazily.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Union, cast, overload

import torch
from torch.distributions import constraints

__all__ = ["PyroParam", "PyroSample"]

# A method of the module in the decorator form, a no-argument function otherwise.
ParamInit = Union[torch.Tensor, Callable[..., torch.Tensor]]


@dataclass(frozen=True)
class PyroParam:
    """A learnable attribute of a :class:`~ember.nn.module.PyroModule`, like :func:`ember.param`.

    Assign it to a module attribute (``module.scale = PyroParam(torch.ones(3),
    constraints.positive)``); reading the attribute inside the module's call then records a
    param site named after the attribute's dotted path. Used bare or called with keyword
    arguments, it also decorates a method that computes the initial value lazily.

    :param init_value: the initial constrained value, or a function returning it (called once,
        when the attribute is first stored); ``None`` only in the decorator form.
    :param constraint: the constraint the value satisfies.
    :param event_dim: how many rightmost dims are not batch dims, so an enclosing subsampled
        plate can slice the value; ``None`` means no dim is sliced.

    Like Pyro's (a ``NamedTuple``) it unpacks as ``init_value, constraint, event_dim``. It is a
    class rather than a tuple so that type checkers see the decorator form as a descriptor
    whose value is a tensor.

    >>> import ember, torch
    >>> from ember.nn import PyroModule
    >>> m = PyroModule("m")
    >>> m.scale = PyroParam(torch.ones(2), constraint=constraints.positive)
    >>> m.scale
    tensor([1., 1.], grad_fn=<...>)
    """

    init_value: ParamInit | None = None
    constraint: constraints.Constraint = constraints.real
    event_dim: int | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.init_value, self.constraint, self.event_dim))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> Any:
        return (self.init_value, self.constraint, self.event_dim)[index]

    @overload
    def __get__(self, obj: None, obj_type: type[torch.nn.Module]) -> PyroParam: ...

    @overload
    def __get__(self, obj: torch.nn.Module, obj_type: type[torch.nn.Module]) -> torch.Tensor: ...

    def __get__(self, obj: torch.nn.Module | None, obj_type: type[torch.nn.Module]) -> PyroParam | torch.Tensor:
        if obj is None:
            return self
        method: Callable[..., torch.Tensor] | None = self.init_value if callable(self.init_value) else None
        assert method is not None, "a PyroParam used as a decorator needs a method"
        name: str = method.__name__
        if name not in obj.__dict__["_pyro_params"]:
            # Store it as an ordinary PyroParam attribute with the method bound to ``obj``.
            setattr(obj, name, PyroParam(functools.partial(method, obj), self.constraint, self.event_dim))
        value: Any = obj.__getattr__(name)
        return cast(torch.Tensor, value)

    def __call__(self, init_value: ParamInit) -> PyroParam:
        """Finish the decorator form ``@PyroParam(constraint=..., event_dim=...)``."""
        assert self.init_value is None, "PyroParam(...) is already initialised"
        return PyroParam(init_value, self.constraint, self.event_dim)


@dataclass(frozen=True)
class PyroSample:
    """A random attribute of a :class:`~ember.nn.module.PyroModule`, like :func:`ember.sample`.

    Reading the attribute inside the module's call records a sample site named after its
    dotted path; the value is cached for the rest of that call. ``prior`` is a distribution,
    or a function of the module returning a distribution (or a tensor, recorded as a
    deterministic site). As a decorator it turns such a method into a random attribute.

    :param prior: a distribution, or a function ``prior(module)``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> from ember.nn import PyroModule
    >>> m = PyroModule("m")
    >>> m.x = PyroSample(dist.Normal(0.0, 1.0))
    >>> m.x.shape
    torch.Size([])
    """

    prior: Any
    name: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name: str | None = None
        if not hasattr(self.prior, "sample"):
            required = [
                p
                for p in inspect.signature(self.prior).parameters.values()
                if p.default is inspect.Parameter.empty
            ]
            assert len(required) == 1, "prior should take the single argument 'self'"
            name = getattr(self.prior, "__name__", None)
            if name is not None:
                # Rename the function so that it can be stored on the class under its new name
                # (see ``__get__``), where pickle finds it by qualified name.
                self.prior.__name__ = "_pyro_prior_" + name
                head, _, _ = self.prior.__qualname__.rpartition(".")
                self.prior.__qualname__ = f"{head}.{self.prior.__name__}" if head else self.prior.__name__
        object.__setattr__(self, "name", name)

    def __get__(self, obj: torch.nn.Module | None, obj_type: type[torch.nn.Module]) -> Any:
        if obj is None:
            return self
        name = self.name
        if name is None:
            name = next(attr for attr in dir(obj_type) if inspect.getattr_static(obj_type, attr) is self)
            object.__setattr__(self, "name", name)
        else:
            setattr(obj_type, self.prior.__name__, self.prior)
        obj.__dict__["_pyro_samples"].setdefault(name, self.prior)
        return obj.__getattr__(name)
