"""``reparam``: replace a sample site by auxiliary sites and a deterministic transform.

Changes step 1 of ``sample`` messages that the config selects: the reparameterizer's
``apply`` receives the site's name, distribution, value and ``is_observed``, may draw new
(auxiliary) sample sites of its own, and returns the distribution, value and ``is_observed``
that replace the site's. Typically the site becomes observed at a value computed from the
auxiliary sites, under a zero-density ``Delta``, so outer handlers see a deterministic site.

Before ``apply`` runs, enclosing initialization messengers get the message first (they
answer the ``"get_init_messengers"`` effect by appending themselves to its value), so an
initial value chosen for the original site can be pushed through the reparameterizer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Callable, Generic, ParamSpec, Protocol, TypedDict, TypeVar, Union

import torch

from ember.poutine import _handler_state
from ember.poutine.message import Message
from ember.poutine.messenger import BindsAsMethod, Messenger
from ember.poutine.runtime import effectful
from ember.poutine.util import site_is_subsample
from ember._util import warn_at_caller

__all__ = [
    "ReparamConfig",
    "ReparamHandler",
    "ReparamMessage",
    "ReparamMessenger",
    "ReparamResult",
    "Reparameterizer",
]

# Bound by assignment (see ember.poutine.runtime): CPython 3.11 calls a method of an imported
# name through LOAD_ATTR, of an assigned one through the faster LOAD_METHOD.
_STACK = _handler_state._STACK

_P = ParamSpec("_P")
_T = TypeVar("_T")


class ReparamMessage(TypedDict):
    """The part of a sample message a reparameterizer sees."""

    name: str
    fn: Any
    value: torch.Tensor | None
    is_observed: bool | None


class ReparamResult(TypedDict):
    """What a reparameterizer returns: the site's new distribution, value and observedness."""

    fn: Any
    value: torch.Tensor | None
    is_observed: bool


class Reparameterizer(Protocol):
    """Anything with Pyro's ``Reparam.apply`` method."""

    def apply(self, msg: ReparamMessage) -> ReparamResult: ...


ReparamConfig = Union[Mapping[str, Reparameterizer], Callable[[Message], Union[Reparameterizer, None]]]


def _no_init_messengers() -> list[Messenger]:
    return []


# Answered by initialization messengers, each of which appends itself to the value.
_get_init_messengers = effectful(_no_init_messengers, type="get_init_messengers")


class ReparamMessenger(Messenger):
    """Reparameterize the sample sites chosen by ``config``.

    Reparameterizers that read the model's arguments (through their ``args_kwargs``
    attribute) need the wrapped-function form, ``reparam(model, config)``, which records the
    arguments of each call; as a context manager ``args_kwargs`` is ``None``.

    :param config: a mapping from site name to reparameterizer, or a function from the message
        to a reparameterizer or ``None`` (leave the site alone).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.infer.reparam import LocScaleReparam
    >>> from ember.poutine import trace
    >>> def model():
    ...     return ember.sample("x", dist.Normal(1.0, 2.0))
    >>> tr = trace(ReparamMessenger({"x": LocScaleReparam(centered=0.0)})(model)).get_trace()
    >>> list(tr.nodes), tr.nodes["x"]["is_observed"]
    (['_INPUT', 'x_decentered', 'x', '_RETURN'], True)
    """

    _copy_per_call = True  # per-run state: each call of a wrapped function gets a copy

    def __init__(self, config: ReparamConfig) -> None:
        super().__init__()
        if not (isinstance(config, Mapping) or callable(config)):
            # Pyro asserts here; keep its error type, with a message.
            raise AssertionError(f"reparam config must be a dict or a callable, got {type(config).__name__}")
        self.config = config
        self._args_kwargs: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def __call__(self, fn: Callable[_P, _T]) -> ReparamHandler[_P, _T]:
        if not callable(fn):
            raise ValueError(f"{fn!r} is not callable, did you mean to pass it as a keyword arg?")
        handler = ReparamHandler(self, fn)
        functools.update_wrapper(handler, fn, updated=())
        return handler

    def _pyro_sample(self, msg: Message) -> None:
        if site_is_subsample(msg):
            return
        name = msg["name"]
        assert name is not None, "a sample site needs a name"
        config = self.config
        reparam = config.get(name) if isinstance(config, Mapping) else config(msg)
        if reparam is None:
            return

        # Initialization messengers usually sit outside reparam, so they would only see the
        # reparameterized site; running them now lets an initial value for the original
        # site reach the reparameterizer. Running them again later is harmless: they never
        # overwrite a value.
        for init_messenger in _get_init_messengers():
            init_messenger._process_message(msg)

        # A side channel for reparameterizers that read the model's inputs; setattr because
        # the Reparameterizer protocol does not require the attribute.
        setattr(reparam, "args_kwargs", self._args_kwargs)
        try:
            result = reparam.apply(
                {"name": name, "fn": msg["fn"], "value": msg["value"], "is_observed": msg["is_observed"]}
            )
        finally:
            setattr(reparam, "args_kwargs", None)

        new_value = result["value"]
        old_value = msg["value"]
        if new_value is not None and old_value is not None and new_value is not old_value:
            if not torch._C._get_tracing_state() and new_value.shape != old_value.shape:
                # Pyro asserts here; keep its error type, with a message naming the site.
                raise AssertionError(
                    f"At sample site {name!r}, {type(reparam).__name__} changed the value's shape "
                    f"from {tuple(old_value.shape)} to {tuple(new_value.shape)}"
                )
            if getattr(old_value, "_pyro_custom_init", True):
                warn_at_caller(
                    f"At pyro.sample({name!r},...), {type(reparam).__name__} does not commute with "
                    "initialization; falling back to default initialization.",
                    RuntimeWarning,
                )
        msg["fn"] = result["fn"]
        msg["value"] = new_value
        msg["is_observed"] = result["is_observed"]


class ReparamHandler(BindsAsMethod[_T], Generic[_P, _T]):
    """A function run under a :class:`ReparamMessenger` that records each call's arguments.

    It binds like a function, so it also works as a method decorator.

    :param msngr: the messenger to run under.
    :param fn: the function to wrap.
    """

    def __init__(self, msngr: ReparamMessenger, fn: Callable[_P, _T]) -> None:
        self.msngr = msngr
        self.fn = fn

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        # A copy per call holds this call's arguments, so the handler is shareable.
        msngr = self.msngr._copy_for_call()
        msngr._args_kwargs = (args, kwargs)
        stack = _STACK.get()
        try:
            with msngr:
                return self.fn(*args, **kwargs)
        finally:
            _STACK.set(stack)  # restores the stack even if ``__exit__`` was interrupted

