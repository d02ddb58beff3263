"""Site predicates, trace pruning, the queue helpers, and the poutine validation switch."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Collection, Iterable
from types import TracebackType
from typing import Any

from typing_extensions import Self

from ember._util import warn_at_caller
from ember.poutine import runtime
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.trace_struct import Trace

__all__ = [
    "all_escape",
    "discrete_escape",
    "enable_validation",
    "enum_extend",
    "is_validation_enabled",
    "mc_extend",
    "prune_subsample_sites",
    "remove_subsample_sites",
    "save_visualization",
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
    remove_subsample_sites(pruned)
    return pruned


def remove_subsample_sites(trace: Trace) -> None:
    """Remove the subsample sites from ``trace`` in place (no copy, for traces one owns)."""
    for name in [name for name, site in trace.nodes.items() if site_is_subsample(site)]:
        trace.remove_node(name)


def _extended(trace: Trace, msg: Message, value: Any) -> Trace:
    name = msg["name"]
    assert name is not None, "cannot extend a trace by an unnamed site"
    extended = trace.copy()
    extended._add_site(name, {**msg, "value": value})
    return extended


def enum_extend(trace: Trace, msg: Message, num_samples: int | None = None) -> list[Trace]:
    """One copy of a partial trace per value in the support of ``msg``'s distribution.

    :param num_samples: keep only the first ``num_samples + 1`` values; ``None`` or a
        negative number keeps all of them.
    """
    fn: Any = msg["fn"]
    support = fn.enumerate_support(*msg["args"], **msg["kwargs"])
    limit = None if num_samples is None or num_samples < 0 else num_samples + 1
    return [_extended(trace, msg, value) for value in list(support)[:limit]]


def mc_extend(trace: Trace, msg: Message, num_samples: int | None = None) -> list[Trace]:
    """``num_samples`` (default 1) copies of a partial trace, each with a fresh sample at ``msg``."""
    return [
        _extended(trace, msg, msg["fn"](*msg["args"], **msg["kwargs"]))
        for _ in range(1 if num_samples is None else num_samples)
    ]


def _unseen_latent(trace: Trace, msg: Message) -> bool:
    return (
        msg["type"] == "sample"
        and not msg["is_observed"]
        and msg["name"] is not None
        and msg["name"] not in trace
    )


def discrete_escape(trace: Trace, msg: Message) -> bool:
    """Escape at unobserved discrete sample sites not yet in ``trace``."""
    return _unseen_latent(trace, msg) and bool(getattr(msg["fn"], "has_enumerate_support", False))


def all_escape(trace: Trace, msg: Message) -> bool:
    """Escape at every unobserved sample site not yet in ``trace``."""
    return _unseen_latent(trace, msg)



def save_visualization(trace: Trace, graph_output: str) -> None:
    """Deprecated: render a dense trace's sample sites with graphviz to ``graph_output`` + ``.pdf``.

    Latent sites are salmon (half grey if reparameterized), observed ones green; subsample
    sites are left out. Needs the ``graphviz`` package; prefer a model-rendering tool.

    :param trace: a trace recorded with ``graph_type="dense"``.
    :param graph_output: the output file name, without extension.
    :raises ModuleNotFoundError: without ``graphviz`` (after the deprecation warning).
    """
    warn_at_caller("`save_visualization` function is deprecated and will be removed in a future version.")
    graphviz = importlib.import_module("graphviz")
    graph = graphviz.Digraph()
    stochastic, reparameterized, observed = trace.stochastic_nodes, trace.reparameterized_nodes, trace.observation_nodes
    for label, node in trace.nodes.items():
        if site_is_subsample(node):
            continue
        if label in stochastic and label not in reparameterized:
            color = "salmon"
        elif label in reparameterized:
            color = "lightgrey;.5:salmon"
        elif label in observed:
            color = "darkolivegreen3"
        else:
            continue
        graph.node(label, label=label, shape="ellipse", style="filled", fillcolor=color)
    for first, second in trace.edges:
        if not (site_is_subsample(trace.nodes[first]) or site_is_subsample(trace.nodes[second])):
            graph.edge(first, second)
    graph.render(graph_output, view=False, cleanup=True)
_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_POUTINE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _created_by_user() -> bool:
    """Whether the handler being constructed was asked for by the user's code, not by Ember's.

    Skips the handler factory and messenger constructors (``ember/poutine``); the first frame
    beyond them decides. Ember's own inference code (``Predictive``, the ELBOs) conditions and
    replays on purpose with data a run may not reach, and must not warn about it.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_POUTINE_DIR):
        frame = frame.f_back  # type: ignore[assignment]  # None ends the loop
    return frame is None or not frame.f_code.co_filename.startswith(_EMBER_DIR)


def _unused_trace_sites(trace: Trace, reached: Collection[str]) -> list[str]:
    """The latent, non-auxiliary, non-subsample sample sites of ``trace`` not in ``reached``."""
    return [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample"
        and name not in reached
        and not site["is_observed"]
        and not site["infer"].get("is_auxiliary")
        and not site_is_subsample(site)
    ]


def _warn_unused(handler: str, what: str, unused: Iterable[object]) -> None:
    """Warn once that ``handler`` was given ``what`` for names the run never reached."""
    names = sorted(str(name) for name in unused)
    if names:
        warn_at_caller(
            f"{handler} was given {what} for site names the model never reached: {names}; "
            "check the names (Ember warns where Pyro silently ignores them)"
        )


class _WarnsUnreached(Messenger):
    """A messenger given values by site name that warns about the names a run never reached.

    Each use (one ``with`` block, or one call of a wrapped function on its own copy) starts
    with no name reached; a subclass adds to ``_reached`` as its sites come by. A use that
    ends normally, with validation on, calls :meth:`_report_unreached`, unless Ember's own
    code (not the user's) created the messenger.
    """

    def __init__(self) -> None:
        super().__init__()
        self._warn_unused = _created_by_user()
        self._reached: set[str] = set()

    def __enter__(self) -> Self:
        self._reached = set()
        return super().__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc_value, traceback)
        if exc_type is None and self._warn_unused and is_validation_enabled():
            self._report_unreached()

    def _report_unreached(self) -> None:
        """Warn (with :func:`_warn_unused`) about the given names not in ``_reached``."""
        raise NotImplementedError
