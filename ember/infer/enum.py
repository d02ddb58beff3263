"""Paired model/guide traces for the ELBOs, and sequential enumeration of discrete sites."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from queue import LifoQueue
from typing import Any

import torch
from torch.jit._trace import TracerWarning

from ember.infer._batched_scoring import score_in_batches
from ember.infer.util import (
    check_model_guide_match,
    check_site_shape,
    is_validation_enabled,
)
from ember.poutine.handlers import queue, replay, trace
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger, unwrap
from ember.poutine.enum_messenger import enumerate_site
from ember.poutine.trace_struct import Trace
from ember.poutine.util import remove_subsample_sites

__all__ = ["get_importance_trace", "iter_discrete_escape", "iter_discrete_extend", "iter_discrete_traces"]


def _run_and_trace(fn: Callable[..., Any], graph_type: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Trace:
    # The tracer is ours alone, so its trace is returned as is rather than copied.
    handler = trace(fn, graph_type=graph_type)
    handler(*args, **kwargs)
    return handler.trace


def get_importance_trace(
    graph_type: str,
    max_plate_nesting: float,
    model: Callable[..., Any],
    guide: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    detach: bool = False,
) -> tuple[Trace, Trace]:
    """Run the guide, then the model replayed against it; return ``(model_trace, guide_trace)``.

    Subsample sites are dropped, the model trace gets ``log_prob`` at each sample site and
    the guide trace ``score_parts``. With validation on, the pair is checked by
    :func:`~ember.infer.util.check_model_guide_match` and every site by
    :func:`~ember.infer.util.check_site_shape`. A guide that is a
    :class:`~ember.poutine.guide.GuideMessenger` yields both traces itself.

    :param graph_type: ``"flat"`` or ``"dense"``.
    :param max_plate_nesting: the number of rightmost batch dims reserved for plates.
    :param detach: detach the guide's sample values from the autograd graph.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(0.5, 1.0))
    >>> model_tr, guide_tr = get_importance_trace("flat", float("inf"), model, guide, (), {})
    >>> model_tr.nodes["z"]["value"] is guide_tr.nodes["z"]["value"], "score_parts" in guide_tr.nodes["z"]
    (True, True)
    """
    return _importance_trace(graph_type, max_plate_nesting, model, guide, args, kwargs, detach, False)


def _importance_trace(
    graph_type: str,
    max_plate_nesting: float,
    model: Callable[..., Any],
    guide: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    detach: bool,
    batch_scoring: bool,
) -> tuple[Trace, Trace]:
    """:func:`get_importance_trace`, optionally scoring like model sites in batches
    (:func:`~ember.infer._batched_scoring.score_in_batches`)."""
    unwrapped_guide = unwrap(guide)
    if isinstance(unwrapped_guide, Messenger):
        if detach:
            raise NotImplementedError("GuideMessenger does not support detach")
        # Any messenger-based guide (GuideMessenger's protocol) builds both traces itself.
        get_traces: Callable[[], tuple[Trace, Trace]] = getattr(unwrapped_guide, "get_traces")
        guide(*args, **kwargs)
        model_trace, guide_trace = get_traces()
    else:
        guide_trace = _run_and_trace(guide, graph_type, args, kwargs)
        if detach:
            guide_trace.detach_()
        model_trace = _run_and_trace(replay(model, trace=guide_trace), graph_type, args, kwargs)

    validate = is_validation_enabled()
    if validate:
        check_model_guide_match(model_trace, guide_trace, max_plate_nesting)
    # The traces are ours alone, so they are pruned in place rather than copied.
    remove_subsample_sites(guide_trace)
    remove_subsample_sites(model_trace)

    if batch_scoring:
        score_in_batches(model_trace, validate)
    model_trace.compute_log_prob()
    guide_trace.compute_score_parts()
    if validate:
        for tr in (model_trace, guide_trace):
            for site in tr.nodes.values():
                if site["type"] == "sample":
                    check_site_shape(site, max_plate_nesting)
    return model_trace, guide_trace


def iter_discrete_escape(tr: Trace, msg: Message) -> bool:
    """Whether ``msg`` is a sequentially enumerated sample site not yet in ``tr``."""
    return (
        msg["type"] == "sample"
        and not msg["is_observed"]
        and msg["infer"].get("enumerate") == "sequential"
        and msg["name"] not in tr
    )


def iter_discrete_extend(tr: Trace, site: Message, **ignored: Any) -> Iterator[Trace]:
    """Extend ``tr`` by each value in the support of ``site``, recording ``_enum_total``."""
    values = enumerate_site(site)
    enum_total = values.shape[0]
    with warnings.catch_warnings():
        if torch._C._get_tracing_state():
            warnings.filterwarnings("ignore", category=TracerWarning)
            warnings.filterwarnings("ignore", message="Iterating over a tensor", category=RuntimeWarning)
        rows = list(values)
    name = site["name"] or ""
    for value in rows:
        extended_site = site.copy()
        extended_site["infer"] = {**site["infer"], "_enum_total": enum_total}
        extended_site["value"] = value
        extended = tr.copy()
        extended.add_node(name, **extended_site)
        yield extended


def iter_discrete_traces(graph_type: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[Trace]:
    """Yield one trace of ``fn`` per joint value of its sequentially enumerated sites.

    Sites marked ``infer={"enumerate": "sequential"}`` take each value of their support in
    turn; other sites are sampled as usual.

    :param graph_type: ``"flat"`` or ``"dense"``.
    :param fn: a stochastic function.
    """
    pending: LifoQueue[Trace] = LifoQueue()
    pending.put(Trace())
    traced = trace(
        queue(fn, pending, escape_fn=iter_discrete_escape, extend_fn=iter_discrete_extend),
        graph_type=graph_type,
    )
    while not pending.empty():
        yield traced.get_trace(*args, **kwargs)
