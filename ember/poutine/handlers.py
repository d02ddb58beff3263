"""The handler functions: each messenger class, usable three ways.

Every handler comes from one typed factory, :class:`Handler`, which captures the messenger's
``__init__`` signature, so each handler is one line here and type-checks in all its forms:

* ``condition(model, data={...})`` wraps ``model``, keeping its exact signature;
* ``condition(data={...})`` returns the messenger, for ``with`` or as a decorator;
* ``@condition(data={...})`` on a function or method.

Only the handlers with extra forms are typed by hand: ``trace`` (its wrapper has
``get_trace``), ``markov`` (also loops over an iterable), ``reparam`` (its wrapper records
the call's arguments) and ``queue`` (it re-runs the function, so it is no messenger).
"""

from __future__ import annotations

import inspect

from collections.abc import Iterable, Iterator
from typing import Any, Callable, Generic, ParamSpec, TypeVar, overload

from ember.poutine.messenger import Messenger
from ember.poutine.block_messenger import BlockMessenger
from ember.poutine.broadcast_messenger import BroadcastMessenger
from ember.poutine.collapse_messenger import CollapseMessenger
from ember.poutine.condition_messenger import ConditionMessenger
from ember.poutine.do_messenger import DoMessenger
from ember.poutine.enum_messenger import EnumMessenger
from ember.poutine.equalize_messenger import EqualizeMessenger
from ember.poutine.escape_messenger import EscapeMessenger
from ember.poutine.infer_config_messenger import InferConfigMessenger
from ember.poutine.lift_messenger import LiftMessenger
from ember.poutine.markov_messenger import MarkovMessenger
from ember.poutine.mask_messenger import MaskMessenger
from ember.poutine.reparam_messenger import ReparamConfig, ReparamHandler, ReparamMessenger
from ember.poutine.replay_messenger import ReplayMessenger
from ember.poutine.scale_messenger import ScaleMessenger
from ember.poutine.seed_messenger import SeedMessenger
from ember.poutine.substitute_messenger import SubstituteMessenger
from ember.poutine.trace_messenger import TraceHandler, TraceMessenger
from ember.poutine.uncondition_messenger import UnconditionMessenger
from ember.poutine.queue import queue as queue  # typed by hand: it re-runs fn, so it is no messenger
from ember.poutine.runtime import NonlocalExit

__all__ = [
    "Handler",
    "NonlocalExit",  # re-exported: Pyro's pyro.poutine.handlers has it
    "block",
    "broadcast",
    "collapse",
    "condition",
    "do",
    "enum",
    "equalize",
    "escape",
    "infer_config",
    "lift",
    "markov",
    "mask",
    "queue",
    "reparam",
    "replay",
    "scale",
    "seed",
    "substitute",
    "trace",
    "uncondition",
]

_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_T = TypeVar("_T")
_M = TypeVar("_M", bound=Messenger)


def _check_callable(fn: object) -> None:
    if fn is not None and not (callable(fn) or isinstance(fn, Iterable)):
        raise ValueError(f"{fn!r} is not callable, did you mean to pass it as a keyword arg?")


def _handler_signature(messenger_cls: Callable[..., Any]) -> inspect.Signature:
    """``(fn, <the messenger's own parameters>)``: what the handler really accepts.

    As in Pyro, ``fn`` shows its default ``None`` only when every messenger parameter has a
    default too (a signature cannot put a required parameter after an optional one).
    """
    try:
        # The __init__'s parameters: a messenger may define a pass-through __new__.
        init = getattr(messenger_cls, "__init__", messenger_cls)
        own = list(inspect.signature(init).parameters.values())[1:]
    except (TypeError, ValueError):  # a builtin or C-level __init__: no introspectable signature
        own = [
            inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = any(p.kind in positional and p.default is inspect.Parameter.empty for p in own)
    fn = inspect.Parameter(
        "fn",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=inspect.Parameter.empty if required else None,
        annotation="Callable[..., Any] | None",
    )
    returns = f"{getattr(messenger_cls, '__name__', 'Messenger')} | Callable[..., Any]"
    return inspect.Signature([fn, *own], return_annotation=returns)


class Handler(Generic[_P, _M]):
    """A handler function made from a messenger class.

    ``handler(fn, *args, **kwargs)`` returns ``fn`` wrapped in ``MessengerClass(*args,
    **kwargs)``; ``handler(*args, **kwargs)`` with no ``fn`` returns the messenger itself.
    ``fn`` may also be passed by keyword, as in Pyro. :func:`inspect.signature`, ``help()``
    and IPython's ``?`` show ``fn`` followed by the messenger's own parameters.

    :param messenger_cls: the messenger class; its ``__init__`` parameters become the
        handler's parameters after ``fn``.
    """

    def __init__(self, messenger_cls: Callable[_P, _M], name: str) -> None:
        self.messenger_cls = messenger_cls
        self.__name__ = self.__qualname__ = name
        self.__module__ = __name__
        self.__signature__ = _handler_signature(messenger_cls)
        self.__doc__ = f"Handler form of :class:`{getattr(messenger_cls, '__qualname__', name)}`.\n\n" + (
            inspect.cleandoc(getattr(messenger_cls, "__doc__", None) or "")
        )

    @overload
    def __call__(self, fn: None = None, *args: _P.args, **kwargs: _P.kwargs) -> _M: ...

    @overload
    def __call__(self, fn: Callable[_Q, _T], *args: _P.args, **kwargs: _P.kwargs) -> Callable[_Q, _T]: ...

    def __call__(self, fn: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        _check_callable(fn)
        messenger = self.messenger_cls(*args, **kwargs)
        if fn is None:
            return messenger
        return messenger(fn)

    def __repr__(self) -> str:
        # pydoc's help() prints an object's repr above its docstring: show the parameters.
        plain = self.__signature__.replace(
            parameters=[p.replace(annotation=inspect.Parameter.empty) for p in self.__signature__.parameters.values()],
            return_annotation=inspect.Signature.empty,
        )
        return f"<handler {self.__name__}{plain}>"


block = Handler(BlockMessenger, "block")
broadcast = Handler(BroadcastMessenger, "broadcast")
condition = Handler(ConditionMessenger, "condition")
lift = Handler(LiftMessenger, "lift")
mask = Handler(MaskMessenger, "mask")
replay = Handler(ReplayMessenger, "replay")
scale = Handler(ScaleMessenger, "scale")
seed = Handler(SeedMessenger, "seed")
substitute = Handler(SubstituteMessenger, "substitute")
uncondition = Handler(UnconditionMessenger, "uncondition")
do = Handler(DoMessenger, "do")
equalize = Handler(EqualizeMessenger, "equalize")
escape = Handler(EscapeMessenger, "escape")
infer_config = Handler(InferConfigMessenger, "infer_config")
enum = Handler(EnumMessenger, "enum")
collapse = Handler(CollapseMessenger, "collapse")


@overload
def markov(
    fn: None = None, history: int = 1, keep: bool = False, dim: int | None = None, name: str | None = None
) -> MarkovMessenger: ...


@overload
def markov(
    fn: Callable[_Q, _T], history: int = 1, keep: bool = False, dim: int | None = None, name: str | None = None
) -> Callable[_Q, _T]: ...


@overload
def markov(
    fn: Iterable[_T], history: int = 1, keep: bool = False, dim: int | None = None, name: str | None = None
) -> Iterator[_T]: ...


def markov(
    fn: Callable[..., Any] | Iterable[Any] | None = None,
    history: int = 1,
    keep: bool = False,
    dim: int | None = None,
    name: str | None = None,
) -> MarkovMessenger | Callable[..., Any] | Iterator[Any]:
    """Declare Markov structure: a context manager, a decorator, or a loop over steps.

    ``markov()`` returns a :class:`MarkovMessenger`; ``markov(fn)`` wraps a (typically
    recursive) function in one; ``markov(iterable)`` yields the items of ``iterable``,
    entering one more markov context per item, so step ``t`` depends only on the
    ``history`` steps before it.

    :param fn: nothing, a function, or an iterable.
    :param history: how many previous contexts a site may depend on.
    :param keep: let sibling contexts entered later at the same depth see earlier ones.
    :param dim: reserved; must be ``None``.
    :param name: reserved; must be ``None``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> tr = trace(lambda: [ember.sample(f"x{t}", dist.Normal(0.0, 1.0)) for t in markov(range(3))]).get_trace()
    >>> dict(tr.nodes["x2"]["infer"]["_markov_scope"])
    {'x1': 1}
    """
    messenger = MarkovMessenger(history=history, keep=keep, dim=dim, name=name)
    if fn is None:
        return messenger
    if callable(fn):
        return messenger(fn)
    # Like Pyro, anything else is taken as an iterable (a TypeError surfaces on iteration).
    return messenger.iterate(fn)


@overload
def reparam(fn: None, config: ReparamConfig) -> ReparamMessenger: ...


@overload
def reparam(*, config: ReparamConfig) -> ReparamMessenger: ...


@overload
def reparam(fn: Callable[_Q, _T], config: ReparamConfig) -> ReparamHandler[_Q, _T]: ...


def reparam(
    fn: Callable[_Q, _T] | None = None, config: ReparamConfig | None = None
) -> ReparamMessenger | ReparamHandler[_Q, _T]:
    """Reparameterize the sample sites that ``config`` selects (see :class:`ReparamMessenger`).

    Typed by hand: wrapping ``fn`` gives a :class:`ReparamHandler`, which records the call's
    arguments for the reparameterizers.

    :param fn: the function to wrap; omit it to get the messenger.
    :param config: a dict from site name to reparameterizer, or a function from the message
        to a reparameterizer or ``None``.

    >>> import ember
    >>> import ember.distributions as dist
    >>> from ember.infer.reparam import TransformReparam
    >>> def model():
    ...     return ember.sample("x", dist.LogNormal(0.0, 1.0))
    >>> list(trace(reparam(model, {"x": TransformReparam()})).get_trace().nodes)
    ['_INPUT', 'x_base', 'x', '_RETURN']
    """
    _check_callable(fn)
    if config is None:
        raise TypeError("reparam() missing required argument: 'config'")
    messenger = ReparamMessenger(config)
    if fn is None:
        return messenger
    return messenger(fn)


@overload
def trace(fn: None = None, graph_type: str | None = None, param_only: bool | None = None) -> TraceMessenger: ...


@overload
def trace(
    fn: Callable[_Q, _T], graph_type: str | None = None, param_only: bool | None = None
) -> TraceHandler[_Q, _T]: ...


def trace(
    fn: Callable[_Q, _T] | None = None, graph_type: str | None = None, param_only: bool | None = None
) -> TraceMessenger | TraceHandler[_Q, _T]:
    """Record the sites of ``fn`` in a :class:`~ember.poutine.trace_struct.Trace`.

    :param fn: the function to trace; omit it to get a :class:`TraceMessenger`.
    :param graph_type: ``"flat"`` or ``"dense"``.
    :param param_only: record only param sites.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     return ember.sample("x", dist.Normal(0.0, 1.0))
    >>> list(trace(model).get_trace().nodes)
    ['_INPUT', 'x', '_RETURN']
    """
    _check_callable(fn)
    messenger = TraceMessenger(graph_type=graph_type, param_only=param_only)
    if fn is None:
        return messenger
    return messenger(fn)
