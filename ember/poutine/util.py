"""Site predicates, trace pruning, the queue helpers, and the poutine validation switch."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ember.poutine import runtime
from ember.poutine.message import Message
from ember.poutine.trace_struct import Trace

__all__ = [
    "all_escape",
    "discrete_escape",
    "enable_validation",
    "enum_extend",
    "is_validation_enabled",
    "mc_extend",
    "prune_subsample_sites",
    "site_is_factor",
    "site_is_subsample",
]


def enable_validation(is_validate: bool) -> None:
    """Turn poutine's validation checks on or off."""
    runtime.set_validation(poutine=is_validate)


def is_validation_enabled() -> bool:
    """Whether poutine's validation checks are on."""
    return runtime.is_validation_enabled()


def site_is_subsample(site: Message) -> bool:
    """Whether ``site`` is the sample site a plate records for its subsample indices."""
    return site["type"] == "sample" and type(site["fn"]).__name__ == "_Subsample"


def site_is_factor(site: Message) -> bool:
    """Whether ``site`` was created by :func:`ember.factor`."""
    return site["type"] == "sample" and type(site["fn"]).__name__ == "Unit"


def prune_subsample_sites(trace: Trace) -> Trace:
    """A copy of ``trace`` without its subsample sites."""
    pruned = trace.copy()
    for name, site in trace.nodes.items():
        if site_is_subsample(site):
            pruned.remove_node(name)
    return pruned


def enum_extend(trace: Trace, msg: Message, num_samples: int | None = None) -> Iterator[Trace]:
    """Extend a partial trace by each value in the support of ``msg``'s distribution.

    :param num_samples: stop after ``num_samples + 1`` values (``None``: all of them).
    """
    fn: Any = msg["fn"]
    for i, value in enumerate(fn.enumerate_support()):
        if num_samples is not None and i > num_samples:
            break
        extended = trace.copy()
        extended._add_site(msg["name"] or "", {**msg, "value": value})
        yield extended


def mc_extend(trace: Trace, msg: Message, num_samples: int | None = None) -> Iterator[Trace]:
    """Extend a partial trace by ``num_samples`` (default 1) fresh samples at ``msg``."""
    for _ in range(1 if num_samples is None else num_samples):
        extended = trace.copy()
        value = msg["fn"](*msg["args"], **msg["kwargs"])
        extended._add_site(msg["name"] or "", {**msg, "value": value})
        yield extended


def _unseen_latent(trace: Trace, msg: Message) -> bool:
    return msg["type"] == "sample" and not msg["is_observed"] and msg["name"] not in trace


def discrete_escape(trace: Trace, msg: Message) -> bool:
    """Escape at unobserved discrete sample sites not yet in ``trace``."""
    return _unseen_latent(trace, msg) and bool(getattr(msg["fn"], "has_enumerate_support", False))


def all_escape(trace: Trace, msg: Message) -> bool:
    """Escape at every unobserved sample site not yet in ``trace``."""
    return _unseen_latent(trace, msg)


ExtendFn = Callable[..., Iterator[Trace]]
EscapeFn = Callable[[Trace, Message], bool]
