"""Initialization strategies for autoguides, and :class:`InitMessenger`, which applies them.

An *init strategy* is a function from a sample site (a message, or any mapping with ``"name"``
and ``"fn"``) to a constrained value for it. Called with no site, each ``init_to_*`` function
returns the strategy itself, with its options bound.

:class:`InitMessenger` changes step 1 of latent ``sample`` messages: it sets ``msg["value"]``
from the strategy, so step 2 keeps that value instead of drawing one. It also answers
``get_init_messengers`` messages with the list of init messengers on the stack.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, cast, overload

import torch
from torch.distributions import transform_to

from ember.distributions import Independent, MaskedDistribution
from ember.infer.autoguide.utils import helpful_support_errors
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.util import site_is_subsample

__all__ = [
    "InitMessenger",
    "init_to_feasible",
    "init_to_generated",
    "init_to_mean",
    "init_to_median",
    "init_to_sample",
    "init_to_uniform",
    "init_to_value",
]

InitFn = Callable[[Any], torch.Tensor]
"""An init strategy: site (message) -> constrained initial value."""

_Map = Callable[[torch.Tensor], torch.Tensor]


def _mark_default(value: torch.Tensor) -> torch.Tensor:
    # Read by MCMC initialisation in Pyro: the value came from a strategy, not from the user.
    setattr(value, "_pyro_custom_init", False)
    return value


def _bijection(fn: Any) -> tuple[_Map, _Map]:
    transform = transform_to(fn.support)
    forward: _Map = transform
    inverse: _Map = transform.inv
    return forward, inverse


def _is_multivariate(fn: Any) -> bool:
    while isinstance(fn, (Independent, MaskedDistribution)):
        fn = fn.base_dist
    return any(size > 1 for size in fn.event_shape)


def _no_strategy(site: Any) -> ValueError:
    return ValueError(f"No init strategy specified for site {site['name']!r}")


@overload
def init_to_feasible(site: None = None) -> InitFn: ...


@overload
def init_to_feasible(site: Any) -> torch.Tensor: ...


def init_to_feasible(site: Any = None) -> InitFn | torch.Tensor:
    """Initialize to the point of the support that is zero in unconstrained space.

    >>> import ember.distributions as dist
    >>> init_to_feasible({"name": "s", "fn": dist.LogNormal(3.0, 1.0)})
    tensor(1.)
    """
    if site is None:
        return init_to_feasible
    forward, inverse = _bijection(site["fn"])
    shaped = inverse(site["fn"].sample().detach())
    return _mark_default(forward(torch.zeros_like(shaped)))


@overload
def init_to_sample(site: None = None) -> InitFn: ...


@overload
def init_to_sample(site: Any) -> torch.Tensor: ...


def init_to_sample(site: Any = None) -> InitFn | torch.Tensor:
    """Initialize to a draw from the prior."""
    if site is None:
        return init_to_sample
    return _mark_default(site["fn"].sample().detach())


@overload
def init_to_median(site: None = None, num_samples: int = 15, *, fallback: InitFn | None = ...) -> InitFn: ...


@overload
def init_to_median(site: Any, num_samples: int = 15, *, fallback: InitFn | None = ...) -> torch.Tensor: ...


def init_to_median(
    site: Any = None, num_samples: int = 15, *, fallback: InitFn | None = init_to_feasible
) -> InitFn | torch.Tensor:
    """Initialize to the median of ``num_samples`` prior draws.

    Multivariate sites use :func:`init_to_feasible`; a site whose median cannot be computed (or
    is NaN or outside the support) uses ``fallback``.

    :param num_samples: how many draws to take the median of.
    :param fallback: the strategy for sites without a usable median.
    :raises ValueError: if the median is unusable and ``fallback`` is ``None``.
    """
    if site is None:
        return cast(InitFn, functools.partial(init_to_median, num_samples=num_samples, fallback=fallback))
    fn = site["fn"]
    if _is_multivariate(fn):
        feasible: torch.Tensor = init_to_feasible(site)
        return feasible
    try:
        value = fn.sample(sample_shape=(num_samples,)).median(dim=0)[0]
        if torch.isnan(value).any():
            raise ValueError
        if hasattr(fn, "_validate_sample"):
            fn._validate_sample(value)
        return _mark_default(value)
    except (RuntimeError, ValueError):
        pass
    if fallback is not None:
        return fallback(site)
    raise _no_strategy(site)


@overload
def init_to_mean(site: None = None, *, fallback: InitFn | None = ...) -> InitFn: ...


@overload
def init_to_mean(site: Any, *, fallback: InitFn | None = ...) -> torch.Tensor: ...


def init_to_mean(site: Any = None, *, fallback: InitFn | None = init_to_median) -> InitFn | torch.Tensor:
    """Initialize to the prior mean, or use ``fallback`` where it is undefined or NaN.

    :param fallback: the strategy for sites without a usable mean.
    :raises ValueError: if the mean is unusable and ``fallback`` is ``None``.

    >>> import ember.distributions as dist
    >>> init_to_mean({"name": "x", "fn": dist.Normal(2.0, 1.0)})
    tensor(2.)
    """
    if site is None:
        return cast(InitFn, functools.partial(init_to_mean, fallback=fallback))
    fn = site["fn"]
    try:
        value = fn.mean.detach()
        if torch.isnan(value).any():
            raise ValueError
        if hasattr(fn, "_validate_sample"):
            fn._validate_sample(value)
        return _mark_default(value)
    except (NotImplementedError, ValueError):
        pass  # e.g. Cauchy, whose mean is undefined
    if fallback is not None:
        return fallback(site)
    raise _no_strategy(site)


@overload
def init_to_uniform(site: None = None, radius: float = 2.0) -> InitFn: ...


@overload
def init_to_uniform(site: Any, radius: float = 2.0) -> torch.Tensor: ...


def init_to_uniform(site: Any = None, radius: float = 2.0) -> InitFn | torch.Tensor:
    """Initialize to a point drawn uniformly from ``(-radius, radius)`` in unconstrained space.

    :param radius: half the width of the unconstrained box.
    """
    if site is None:
        return cast(InitFn, functools.partial(init_to_uniform, radius=radius))
    forward, inverse = _bijection(site["fn"])
    shaped = inverse(site["fn"].sample().detach())
    return _mark_default(forward(torch.rand_like(shaped) * (2 * radius) - radius))


@overload
def init_to_value(
    site: None = None, values: Mapping[str, torch.Tensor] = ..., *, fallback: InitFn | None = ...
) -> InitFn: ...


@overload
def init_to_value(
    site: Any, values: Mapping[str, torch.Tensor] = ..., *, fallback: InitFn | None = ...
) -> torch.Tensor: ...


def init_to_value(
    site: Any = None,
    values: Mapping[str, torch.Tensor] | None = None,
    *,
    fallback: InitFn | None = init_to_uniform,
) -> InitFn | torch.Tensor:
    """Initialize each site named in ``values`` to its value, the others with ``fallback``.

    :param values: initial constrained values by site name.
    :param fallback: the strategy for the other sites.
    :raises ValueError: for a site not in ``values`` when ``fallback`` is ``None``.

    >>> import ember.distributions as dist
    >>> init = init_to_value(values={"x": torch.tensor(0.5)})
    >>> init({"name": "x", "fn": dist.Normal(0.0, 1.0)})
    tensor(0.5000)
    """
    values = {} if values is None else values
    if site is None:
        return cast(InitFn, functools.partial(init_to_value, values=values, fallback=fallback))
    if site["name"] in values:
        value: torch.Tensor = values[site["name"]]
        return value
    if fallback is not None:
        return fallback(site)
    raise _no_strategy(site)


class _InitToGenerated:
    """Asks ``generate`` for a fresh strategy once per model run."""

    def __init__(self, generate: Callable[[], InitFn]) -> None:
        self.generate = generate
        self._init: InitFn | None = None
        self._seen: set[str] = set()

    def __call__(self, site: Any) -> torch.Tensor:
        if self._init is None or site["name"] in self._seen:
            # The first site of a run starts a new run's strategy when it comes round again.
            self._init = self.generate()
            self._seen = {site["name"]}
        return self._init(site)


def _uniform_strategy() -> InitFn:
    return init_to_uniform


@overload
def init_to_generated(site: None = None, generate: Callable[[], InitFn] = ...) -> InitFn: ...


@overload
def init_to_generated(site: Any, generate: Callable[[], InitFn] = ...) -> torch.Tensor: ...


def init_to_generated(
    site: Any = None, generate: Callable[[], InitFn] = _uniform_strategy
) -> InitFn | torch.Tensor:
    """Initialize with a strategy that ``generate()`` returns afresh for each model run.

    :param generate: returns a strategy, e.g. ``init_to_value(values=<random values>)``.
    """
    init = _InitToGenerated(generate)
    return init if site is None else init(site)


class InitMessenger(Messenger):
    """Give each latent sample site its value from an init strategy instead of a draw.

    Sites that already have a value (observed, or set by an inner handler) and subsample
    sites are left alone. The strategy runs under ``torch.no_grad()``.

    :param init_fn: the init strategy.

    >>> import ember
    >>> import ember.distributions as dist
    >>> with InitMessenger(init_to_mean):
    ...     x = ember.sample("x", dist.Normal(3.0, 1.0))
    >>> x
    tensor(3.)
    """

    def __init__(self, init_fn: InitFn) -> None:
        super().__init__()
        self.init_fn = init_fn

    def _pyro_sample(self, msg: Message) -> None:
        if msg["value"] is not None or site_is_subsample(msg):
            return
        with torch.no_grad(), helpful_support_errors(msg):
            msg["value"] = self.init_fn(msg)

    def _pyro_get_init_messengers(self, msg: Message) -> None:
        if msg["value"] is None:
            msg["value"] = []
        msg["value"].append(self)
