"""Minipyro: the whole idea of Ember in one file, written to be read top to bottom.

A probabilistic program calls two *primitives*: ``sample`` (draw or observe a random
variable) and ``param`` (read a learnable tensor). Each call becomes a *message*, a plain
dict, that travels through a stack of *messengers* (effect handlers). A messenger may
change the message on the way in (``process_message``), and may look at the finished
message on the way out (``postprocess_message``). Tracing, conditioning on a previous run,
hiding sites and broadcasting over plates are each a few lines, and variational inference
is a loop over two traces.

The real implementation (:mod:`ember.poutine`) follows the same design, with typed
messages, per-thread stacks, more handlers and fast paths; this file trades all of that for
brevity. It has Pyro's ``pyro.contrib.minipyro`` API, and ``ember.generic`` registers it as
the ``ember.minipyro`` backend of :mod:`pyroapi`.

>>> import torch
>>> import ember.distributions as dist
>>> def model():
...     return sample("x", dist.Normal(0.0, 1.0))
>>> tr = trace(model).get_trace()
>>> list(tr), tr["x"]["type"]
(['x'], 'sample')
"""

from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict
from typing import Any, Callable, Iterator

import torch
from torch.distributions import constraints, transform_to
from torch.jit._trace import TracerWarning

__all__ = [
    "Adam",
    "JitTrace_ELBO",
    "Messenger",
    "PlateMessenger",
    "SVI",
    "Trace_ELBO",
    "apply_stack",
    "block",
    "elbo",
    "get_param_store",
    "param",
    "plate",
    "replay",
    "sample",
    "seed",
    "trace",
]

Message = dict[str, Any]

# ---------------------------------------------------------------------------------------
# Global state. The handler stack lists the active messengers, innermost last. The param
# store maps a name to its *unconstrained* leaf tensor (what the optimizer updates) and the
# constraint that maps it to the value the program sees.
# ---------------------------------------------------------------------------------------
PYRO_STACK: list[Messenger] = []
PARAM_STORE: dict[str, tuple[torch.Tensor, constraints.Constraint]] = {}


def get_param_store() -> dict[str, tuple[torch.Tensor, constraints.Constraint]]:
    """The global param store (a plain dict here; Ember's is a ``ParamStoreDict``)."""
    return PARAM_STORE


# ---------------------------------------------------------------------------------------
# Messengers. Entering one pushes it on the stack; calling one on a function runs the
# function inside it. Subclasses override the two hooks.
# ---------------------------------------------------------------------------------------
class Messenger:
    """The base effect handler: a context manager that sees every message."""

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        self.fn = fn

    def __enter__(self) -> Any:
        PYRO_STACK.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Handlers must be exited in the reverse order they were entered.
        assert PYRO_STACK[-1] is self, "messengers exited out of order"
        PYRO_STACK.pop()

    def process_message(self, msg: Message) -> None:
        """Called innermost first, before the value is computed."""

    def postprocess_message(self, msg: Message) -> None:
        """Called once the value is known, outermost first among the messengers that processed it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        assert self.fn is not None, "this messenger wraps no function"
        with self:
            return self.fn(*args, **kwargs)


class trace(Messenger):
    """Record a copy of every finished message, by site name, in ``self.trace``."""

    def __enter__(self) -> Any:
        super().__enter__()
        self.trace: OrderedDict[str, Message] = OrderedDict()
        return self.trace

    def postprocess_message(self, msg: Message) -> None:
        # A site name may be sampled once per run; params may be read many times.
        assert msg["type"] != "sample" or msg["name"] not in self.trace, f"duplicate site {msg['name']!r}"
        self.trace[msg["name"]] = msg.copy()

    def get_trace(self, *args: Any, **kwargs: Any) -> OrderedDict[str, Message]:
        """Run the wrapped function once and return what it recorded."""
        self(*args, **kwargs)
        return self.trace


class replay(Messenger):
    """Reuse the values a previous trace recorded: the model sees the guide's samples."""

    def __init__(self, fn: Callable[..., Any], guide_trace: OrderedDict[str, Message]) -> None:
        super().__init__(fn)
        self.guide_trace = guide_trace

    def process_message(self, msg: Message) -> None:
        if msg["name"] in self.guide_trace:
            msg["value"] = self.guide_trace[msg["name"]]["value"]


class block(Messenger):
    """Hide the messages ``hide_fn`` selects (default: all) from the messengers outside."""

    def __init__(self, fn: Callable[..., Any] | None = None, hide_fn: Callable[[Message], bool] = lambda msg: True):
        super().__init__(fn)
        self.hide_fn = hide_fn

    def process_message(self, msg: Message) -> None:
        if self.hide_fn(msg):
            msg["stop"] = True  # apply_stack stops walking outward here


class seed(Messenger):
    """Run under a fixed torch seed, restoring the global RNG state afterwards."""

    def __init__(self, fn: Callable[..., Any] | None = None, rng_seed: int | None = None) -> None:
        super().__init__(fn)
        self.rng_seed = rng_seed

    def __enter__(self) -> Any:
        self.old_state = torch.get_rng_state()
        if self.rng_seed is not None:
            torch.manual_seed(self.rng_seed)
        return super().__enter__()

    def __exit__(self, *exc_info: object) -> None:
        torch.set_rng_state(self.old_state)
        super().__exit__(*exc_info)


class PlateMessenger(Messenger):
    """Declare ``size`` independent copies along tensor dim ``dim``: every sample site
    inside gets its distribution expanded to have ``size`` at that batch position."""

    def __init__(self, fn: Callable[..., Any] | None, size: int, dim: int) -> None:
        assert dim < 0, "plate dims count from the right"
        super().__init__(fn)
        self.size = size
        self.dim = dim

    def process_message(self, msg: Message) -> None:
        if msg["type"] == "sample":
            batch_shape = list(msg["fn"].batch_shape)
            if len(batch_shape) < -self.dim:
                batch_shape = [1] * (-self.dim - len(batch_shape)) + batch_shape
            batch_shape[self.dim] = self.size
            msg["fn"] = msg["fn"].expand(torch.Size(batch_shape))

    def __iter__(self) -> Iterator[int]:
        # A sequential plate: a plain loop over the indices, no broadcasting.
        return iter(range(self.size))


# ---------------------------------------------------------------------------------------
# The message lifecycle. Walk the stack innermost first, letting each messenger process
# the message (one may stop the walk); compute the value if nobody supplied it; then let
# the messengers that saw the message postprocess it.
# ---------------------------------------------------------------------------------------
def apply_stack(msg: Message) -> Message:
    """Send ``msg`` through the handler stack and return it with its value filled in."""
    seen = 0
    for handler in reversed(PYRO_STACK):
        seen += 1
        handler.process_message(msg)
        if msg.get("stop"):
            break
    if msg["value"] is None:
        msg["value"] = msg["fn"](*msg["args"])
    for handler in PYRO_STACK[len(PYRO_STACK) - seen :]:
        handler.postprocess_message(msg)
    return msg


# ---------------------------------------------------------------------------------------
# Primitives. Outside any handler they just do the obvious thing; inside, they build a
# message and let the stack decide.
# ---------------------------------------------------------------------------------------
def sample(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Draw from the distribution ``fn`` (or observe ``obs=``) at site ``name``."""
    obs = kwargs.pop("obs", None)
    if not PYRO_STACK:
        return obs if obs is not None else fn(*args, **kwargs)
    msg: Message = {"type": "sample", "name": name, "fn": fn, "args": args, "kwargs": kwargs, "value": obs}
    return apply_stack(msg)["value"]


def param(
    name: str,
    init_value: torch.Tensor | None = None,
    constraint: constraints.Constraint = constraints.real,
    event_dim: int | None = None,
) -> torch.Tensor:
    """The learnable tensor ``name``, created from ``init_value`` on first use."""
    if event_dim is not None:
        raise NotImplementedError("minipyro.plate does not support the event_dim arg")

    def read(init_value: torch.Tensor | None, constraint: constraints.Constraint) -> torch.Tensor:
        if name in PARAM_STORE:
            unconstrained, constraint = PARAM_STORE[name]
        else:
            # The optimizer works on the unconstrained value: any real number is valid.
            assert init_value is not None, f"param {name!r} has no init value"
            unconstrained = transform_to(constraint).inv(init_value).detach().requires_grad_()
            PARAM_STORE[name] = unconstrained, constraint
        constrained: torch.Tensor = transform_to(constraint)(unconstrained)
        # Let SVI find the leaf behind the value the program saw.
        constrained.unconstrained = weakref.ref(unconstrained)  # type: ignore[attr-defined]  # an ad-hoc tag on the tensor
        return constrained

    if not PYRO_STACK:
        return read(init_value, constraint)
    msg: Message = {"type": "param", "name": name, "fn": read, "args": (init_value, constraint), "value": None}
    value: torch.Tensor = apply_stack(msg)["value"]
    return value


def plate(name: str, size: int, dim: int | None = None) -> PlateMessenger:
    """A vectorized independence context (``with plate(...)``) of ``size`` at ``dim``."""
    if dim is None:
        raise NotImplementedError("minipyro.plate requires a dim arg")
    return PlateMessenger(fn=None, size=size, dim=dim)


# ---------------------------------------------------------------------------------------
# Inference: an optimizer over params as SVI meets them, the ELBO from two traces, and
# the SVI step tying them together.
# ---------------------------------------------------------------------------------------
class Adam:
    """One ``torch.optim.Adam`` per param, created the first time the param is stepped."""

    def __init__(self, optim_args: dict[str, Any]) -> None:
        self.optim_args = optim_args
        self.optim_objs: dict[torch.Tensor, torch.optim.Adam] = {}

    def __call__(self, params: list[torch.Tensor]) -> None:
        for p in params:
            if p not in self.optim_objs:
                self.optim_objs[p] = torch.optim.Adam([p], **self.optim_args)
            self.optim_objs[p].step()


def elbo(model: Callable[..., Any], guide: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor:
    """The negative ELBO from one sample: run the guide, replay the model on its draws,
    and compare the two log densities."""
    guide_trace = trace(guide).get_trace(*args, **kwargs)
    model_trace = trace(replay(model, guide_trace)).get_trace(*args, **kwargs)
    value: torch.Tensor | float = 0.0
    for site in model_trace.values():
        if site["type"] == "sample":
            value = value + site["fn"].log_prob(site["value"]).sum()
    for site in guide_trace.values():
        if site["type"] == "sample":
            value = value - site["fn"].log_prob(site["value"]).sum()
    return -torch.as_tensor(value)


def Trace_ELBO(**kwargs: Any) -> Callable[..., torch.Tensor]:
    """The ELBO as a loss function (options such as ``ignore_jit_warnings`` are ignored)."""
    return elbo


class JitTrace_ELBO:
    """:func:`elbo` compiled once with :func:`torch.jit.trace`, as a function of the
    unconstrained params and the arguments; later calls run the compiled graph."""

    def __init__(self, **kwargs: Any) -> None:
        self.ignore_jit_warnings = kwargs.pop("ignore_jit_warnings", False)
        self._compiled: Callable[..., torch.Tensor] | None = None
        self._names: list[str] = []

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any) -> torch.Tensor:
        if self._compiled is None:
            # A first eager run creates every param; record the params only, and hide
            # everything from the handlers outside.
            with block(), trace() as params_seen, block(hide_fn=lambda msg: msg["type"] == "sample"):
                elbo(model, guide, *args)
            self._names = [name for name, site in params_seen.items() if site["type"] == "param"]

            def elbo_of(*leaves_and_args: torch.Tensor) -> torch.Tensor:
                # Point the store at the traced inputs so the graph starts from them.
                saved = {name: PARAM_STORE[name] for name in self._names}
                try:
                    for name, leaf in zip(self._names, leaves_and_args):
                        PARAM_STORE[name] = leaf, saved[name][1]
                    return elbo(model, guide, *leaves_and_args[len(self._names) :])
                finally:
                    PARAM_STORE.update(saved)

            leaves = tuple(PARAM_STORE[name][0] for name in self._names)
            with warnings.catch_warnings():
                if self.ignore_jit_warnings:
                    warnings.filterwarnings("ignore", category=TracerWarning)
                self._compiled = torch.jit.trace(  # type: ignore[no-untyped-call]  # torch leaves jit.trace unannotated
                    elbo_of, (*leaves, *args), check_trace=False
                )
        # The compiled graph emits no messages: read each param through the stack so that
        # SVI's param-collecting trace still sees it.
        for name in self._names:
            param(name)
        return self._compiled(*(PARAM_STORE[name][0] for name in self._names), *args)


class SVI:
    """Stochastic variational inference: each :meth:`step` takes one gradient step on the
    params that the model and guide read."""

    def __init__(self, model: Callable[..., Any], guide: Callable[..., Any], optim: Adam, loss: Callable[..., Any]):
        self.model = model
        self.guide = guide
        self.optim = optim
        self.loss = loss

    def step(self, *args: Any, **kwargs: Any) -> float:
        """One step; returns the loss as a float."""
        # Record only the param messages (samples are hidden), to learn which to update.
        with trace() as param_capture:
            with block(hide_fn=lambda msg: msg["type"] == "sample"):
                loss = self.loss(self.model, self.guide, *args, **kwargs)
        loss.backward()
        params = [site["value"].unconstrained() for site in param_capture.values()]
        self.optim(params)
        for p in params:
            p.grad = torch.zeros_like(p)
        return float(loss.item())
