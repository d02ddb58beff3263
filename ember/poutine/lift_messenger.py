"""``lift``: turn param sites into sample sites drawn from a prior.

Changes step 1 of ``param`` messages: the message becomes a ``sample`` message whose ``fn``
is the prior (a distribution, a dict of them by param name, or a stochastic function). A
param seen twice in one run reuses the first value and is hidden from outer messengers.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Union, cast

from typing_extensions import Self

from ember.distributions.distribution import Distribution
from ember.params import user_param_name
from ember.poutine.message import Message, SiteFunction
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import is_validation_enabled
from ember._util import warn_at_caller

__all__ = ["LiftMessenger"]

Prior = Union[Distribution, Callable[..., Any], Mapping[str, Union[Distribution, Callable[..., Any]]]]


class LiftMessenger(Messenger):
    """Lift params to random variables with the given prior.

    :param prior: a distribution for every param, a dict of them by param name, or a
        callable taking the param's init tensor (and constraint keywords).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.trace_messenger import TraceMessenger
    >>> with TraceMessenger() as tracer, LiftMessenger(prior=dist.Normal(0.0, 1.0)):
    ...     w = ember.param("w", torch.tensor(10.0))
    >>> tracer.trace.nodes["w"]["type"]
    'sample'
    """

    _copy_per_call = True  # per-run state: each call of a wrapped function gets a copy

    def __init__(self, prior: Prior) -> None:
        super().__init__()
        self.prior = prior
        self._samples_cache: dict[str, Message] = {}
        self._param_hits: set[str] = set()
        self._param_misses: set[str] = set()

    def __enter__(self) -> Self:
        self._samples_cache = {}
        self._param_hits = set()
        self._param_misses = set()
        return super().__enter__()

    def __exit__(self, *args: Any) -> None:
        self._samples_cache = {}
        if is_validation_enabled() and isinstance(self.prior, Mapping):
            extra = set(self.prior) - self._param_hits
            if extra:
                warn_at_caller(
                    "pyro.module prior did not find params ['{}']. Did you instead mean one of ['{}']?".format(
                        "', '".join(sorted(extra)), "', '".join(sorted(self._param_misses))
                    )
                )
        super().__exit__(*args)

    def _pyro_param(self, msg: Message) -> None:
        name = msg["name"] or ""
        param_name = user_param_name(name)
        prior = self.prior
        if isinstance(prior, Mapping):
            if param_name not in prior:
                self._param_misses.add(param_name)
                return
            self._param_hits.add(param_name)
            msg["fn"] = cast(SiteFunction, prior[param_name])
            msg["args"] = msg["args"][1:]
            if isinstance(msg["fn"], Distribution):
                msg["args"], msg["kwargs"], msg["infer"] = (), {}, {}
        elif isinstance(prior, Distribution):
            msg["fn"] = cast(SiteFunction, prior)
            msg["args"], msg["kwargs"], msg["infer"] = (), {}, {}
        elif callable(prior):
            msg["stop"] = True
            msg["fn"] = cast(SiteFunction, prior)
            msg["args"] = msg["args"][1:]
        else:
            raise TypeError(f"lift prior must be a distribution, a dict or a callable, got {type(prior)}")
        msg["type"] = "sample"
        cached = self._samples_cache.get(name)
        if cached is not None:
            msg["value"] = cached["value"]
            msg["is_observed"] = True
            msg["stop"] = True
        else:
            self._samples_cache[name] = msg
            msg["is_observed"] = False
