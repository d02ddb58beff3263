"""``config_enumerate``: mark every enumerable sample site of a model or guide for enumeration.

The wrapper's messenger changes step 1 of ``sample`` messages: it fills in
``msg["infer"]`` keys (``enumerate``, ``expand``, and for local sampling ``num_samples`` and
``tmc``) that the site does not set itself. Pyro keeps this in ``pyro.infer.enum``;
``ember.infer`` re-exports it from here.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, ParamSpec, TypeVar, overload

from ember.poutine.message import InferDict, Message
from ember.poutine.messenger import Messenger
from ember.poutine.util import site_is_subsample

__all__ = ["config_enumerate"]

_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_T = TypeVar("_T")
_U = TypeVar("_U")


class _EnumerateConfigMessenger(Messenger):
    """Fill in enumeration options at unobserved sample sites, never overriding a site's own.

    :param default: the ``enumerate`` strategy.
    :param expand: whether enumerated values are expanded over the batch shape.
    :param num_samples: local Monte Carlo sample count, or ``None`` for exhaustive enumeration.
    :param tmc: the Tensor Monte Carlo ancestor strategy used with ``num_samples``.
    """

    def __init__(self, default: str | None, expand: bool, num_samples: int | None, tmc: str) -> None:
        super().__init__()
        self.default = default
        self.expand = expand
        self.num_samples = num_samples
        self.tmc = tmc

    def _pyro_sample(self, msg: Message) -> None:
        if msg["is_observed"] or site_is_subsample(msg):
            return
        infer = msg["infer"]
        options: InferDict
        if self.num_samples is not None:
            # Local sampling works for any distribution, discrete or not.
            options = {
                "enumerate": infer.get("enumerate", self.default),
                "num_samples": infer.get("num_samples", self.num_samples),
                "expand": infer.get("expand", self.expand),
                "tmc": infer.get("tmc", self.tmc),
            }
        elif getattr(msg["fn"], "has_enumerate_support", False):
            options = {
                "enumerate": infer.get("enumerate", self.default),
                "expand": infer.get("expand", self.expand),
            }
        else:
            return
        infer.update(options)


@overload
def config_enumerate(
    guide: None = None,
    default: str | None = "parallel",
    expand: bool = False,
    num_samples: int | None = None,
    tmc: str = "diagonal",
) -> Callable[[Callable[_Q, _U]], Callable[_Q, _U]]: ...


@overload
def config_enumerate(
    guide: Callable[_P, _T],
    default: str | None = "parallel",
    expand: bool = False,
    num_samples: int | None = None,
    tmc: str = "diagonal",
) -> Callable[_P, _T]: ...


def config_enumerate(
    guide: Callable[..., Any] | None = None,
    default: str | None = "parallel",
    expand: bool = False,
    num_samples: int | None = None,
    tmc: str = "diagonal",
) -> Callable[..., Any]:
    """Configure enumeration at every relevant sample site of ``guide`` (or a model).

    Without ``num_samples`` it marks unobserved sites whose distribution has enumerable
    support; with ``num_samples`` (local Monte Carlo sampling) it marks every unobserved
    site. Keys a site already sets in its ``infer`` dict are left alone. Plate subsample
    sites are skipped. Use it as a function, ``config_enumerate(guide)``, or as a decorator,
    ``@config_enumerate`` or ``@config_enumerate(default="sequential")``.

    :param guide: the function to configure; omit it to get a decorator.
    :param default: ``"parallel"``, ``"sequential"``, ``"flat"`` or ``None``.
    :param expand: whether to expand enumerated values over the batch shape (exhaustive
        enumeration only).
    :param num_samples: draw this many local samples instead of enumerating the support.
    :param tmc: how local samples pick their ancestors, ``"diagonal"`` or ``"mixture"``;
        ``"full"`` takes plain independent draws.
    :raises ValueError: on an unknown ``default``, a non-bool ``expand``, a non-positive
        ``num_samples``, or ``num_samples`` with ``"sequential"``.

    >>> import ember
    >>> import ember.distributions as dist
    >>> from ember.poutine.handlers import trace
    >>> @config_enumerate
    ... def model():
    ...     ember.sample("z", dist.Bernoulli(0.5))
    ...     ember.sample("w", dist.Normal(0.0, 1.0))
    >>> tr = trace(model).get_trace()
    >>> tr.nodes["z"]["infer"], tr.nodes["w"]["infer"]
    ({'enumerate': 'parallel', 'expand': False}, {})
    """
    if default not in ["sequential", "parallel", "flat", None]:
        raise ValueError(
            f"Invalid default value. Expected 'sequential', 'parallel', or None, but got {default!r}"
        )
    if expand not in [True, False]:
        raise ValueError(f"Invalid expand value. Expected True or False, but got {expand!r}")
    if num_samples is not None:
        if not (isinstance(num_samples, numbers.Number) and num_samples > 0):
            raise ValueError(f"Invalid num_samples, expected None or positive integer, but got {num_samples!r}")
        if default == "sequential":
            raise ValueError(
                'Local sampling does not support "sequential" sampling; use "parallel" sampling instead.'
            )
    if tmc == "full" and num_samples is not None and num_samples > 1:
        # "full" means independent draws, which is what enum does for expanded sites.
        expand = True

    if guide is None:

        def decorate(fn: Callable[_Q, _U]) -> Callable[_Q, _U]:
            return config_enumerate(fn, default=default, expand=expand, num_samples=num_samples, tmc=tmc)

        return decorate
    return _EnumerateConfigMessenger(default, expand, num_samples, tmc)(guide)
