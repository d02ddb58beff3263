"""``infer_discrete``: draw a model's enumerated sites from their posterior, or take its mode.

The model runs once with its ``infer={"enumerate": "parallel"}`` sites enumerated; a
forward pass of the plated sum-product (in the sampling ring, or the max-product ring for
the MAP) followed by its backward pass yields one joint value per enumerated site; then the
model runs again with those values replayed. :class:`TraceEnumSample_ELBO` reuses the
forward pass of the ELBO for the same draw.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

import torch
from opt_einsum import shared_intermediates

from ember._util import jit_iter, warn_at_caller
from ember.infer.elbo import Model, TracePair
from ember.infer.traceenum_elbo import TraceEnum_ELBO
from ember.ops import packed
from ember.ops.contract import contract_tensor_tree
from ember.ops.einsum.adjoint import require_backward
from ember.ops.rings import MapRing, SampleRing
from ember.poutine.enum_messenger import EnumMessenger
from ember.poutine.handlers import block, replay, trace
from ember.poutine.message import Message
from ember.poutine.replay_messenger import ReplayMessenger
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites

__all__ = ["TraceEnumSample_ELBO", "infer_discrete"]

_T = TypeVar("_T")
_RINGS: dict[Any, Any] = {0: MapRing, 1: SampleRing}
_NO_ENUMERATION = (
    "infer_discrete found no sample sites configured for enumeration. "
    "If you want to enumerate sites, you need to @config_enumerate or set "
    'infer={"enumerate": "sequential"} or infer={"enumerate": "parallel"}.'
)


def _dims(value: Any) -> str:
    dims: str = getattr(value, "_pyro_dims", "")
    return dims


def _make_ring(temperature: Any, cache: dict[Any, Any], dim_to_size: dict[str, int]) -> Any:
    try:
        ring_class = _RINGS[temperature]
    except (KeyError, TypeError) as e:
        raise ValueError(f"temperature must be 0 (map) or 1 (sample) for now, got {temperature!r}") from e
    return ring_class(cache=cache, dim_to_size=dim_to_size)


class _SamplePosteriorMessenger(ReplayMessenger):
    """Replay the drawn values of the enumerated sites, with the plates they were drawn in."""

    def _pyro_sample(self, msg: Message) -> None:
        if msg["infer"].get("enumerate") == "parallel":
            super()._pyro_sample(msg)
        assert self.trace is not None
        if msg["name"] in self.trace:
            msg["cond_indep_stack"] = self.trace.nodes[msg["name"] or ""]["cond_indep_stack"]


def _sample_posterior(
    model: Callable[..., Any],
    first_available_dim: int,
    temperature: Any,
    strict_enumeration_warning: bool,
    *args: Any,
    **kwargs: Any,
) -> Any:
    with block(), EnumMessenger(first_available_dim):
        enum_trace = trace(model).get_trace(*args, **kwargs)
    enum_trace = prune_subsample_sites(enum_trace)
    enum_trace.compute_log_prob()
    enum_trace.pack_tensors()
    return _sample_posterior_from_trace(model, enum_trace, temperature, strict_enumeration_warning, *args, **kwargs)


def _collect_terms(enum_trace: Trace) -> tuple[OrderedDict[frozenset[str], list[torch.Tensor]], set[str], list[torch.Tensor], dict[str, int], bool]:
    """The log factors to contract, their summed dims, the queries (latent sites' factors), the
    dim sizes, and whether any factor is an enumerated site's."""
    plate_to_symbol = enum_trace.plate_to_symbol
    sum_dims: set[str] = set()
    queries: list[torch.Tensor] = []
    dim_to_size: dict[str, int] = {}
    cost_terms: OrderedDict[frozenset[str], list[torch.Tensor]] = OrderedDict()
    enum_terms: OrderedDict[frozenset[str], list[torch.Tensor]] = OrderedDict()
    for node in enum_trace.nodes.values():
        if node["type"] != "sample":
            continue
        ordinal = frozenset(
            plate_to_symbol[f.name] for f in node["cond_indep_stack"] if f.vectorized and f.size > 1
        )
        node_packed = node["packed"]
        if "masked_log_prob" not in node_packed:
            node_packed["masked_log_prob"] = packed.scale_and_mask(node_packed["unscaled_log_prob"], mask=node_packed["mask"])
        log_prob = node_packed["masked_log_prob"]
        sum_dims.update(frozenset(_dims(log_prob)) - ordinal)
        if sum_dims.isdisjoint(_dims(log_prob)):
            continue
        dim_to_size.update(zip(_dims(log_prob), log_prob.shape))
        tree = cost_terms if node["infer"].get("_enumerate_dim") is None else enum_terms
        tree.setdefault(ordinal, []).append(log_prob)
        if not node["is_observed"]:
            queries.append(log_prob)
            require_backward(log_prob)
    has_enum = bool(enum_terms)
    for ordinal, enum_list in enum_terms.items():
        cost_terms.setdefault(ordinal, []).extend(enum_list)
    return cost_terms, sum_dims, queries, dim_to_size, has_enum


def _sample_posterior_from_trace(
    model: Callable[..., Any],
    enum_trace: Trace,
    temperature: Any,
    strict_enumeration_warning: bool,
    *args: Any,
    **kwargs: Any,
) -> Any:
    plate_to_symbol = enum_trace.plate_to_symbol
    log_probs, sum_dims, queries, dim_to_size, has_enum = _collect_terms(enum_trace)
    if strict_enumeration_warning and not has_enum:
        warn_at_caller(_NO_ENUMERATION)

    cache = getattr(enum_trace, "_sharing_cache", {})
    ring = _make_ring(temperature, cache, dim_to_size)
    with shared_intermediates(cache):
        contracted = contract_tensor_tree(log_probs, sum_dims, ring=ring)  # forward pass
    # Run the backward pass from each root, noting which root each query was reached from.
    query_to_ordinal: dict[int, frozenset[str]] = {}
    pending = object()
    for query in queries:
        setattr(query, "_pyro_backward_result", pending)
    for ordinal, terms in contracted.items():
        for term in terms:
            if hasattr(term, "_pyro_backward"):
                term._pyro_backward()
        for query in queries:
            if id(query) not in query_to_ordinal and getattr(query, "_pyro_backward_result") is not pending:
                query_to_ordinal[id(query)] = ordinal

    collapsed = Trace()
    for node in enum_trace.nodes.values():
        if node["type"] != "sample" or node["is_observed"]:
            continue
        new_node: dict[str, Any] = {
            "type": "sample",
            "name": node["name"],
            "is_observed": False,
            "infer": node["infer"].copy(),
            "cond_indep_stack": node["cond_indep_stack"],
            "value": node["value"],
        }
        log_prob = node["packed"]["masked_log_prob"]
        if hasattr(log_prob, "_pyro_backward_result"):
            ordinal = query_to_ordinal[id(log_prob)]
            # A site drawn per plate slice stays in that plate; the others leave it.
            new_node["cond_indep_stack"] = tuple(
                f for f in node["cond_indep_stack"] if not (f.vectorized and f.size > 1) or plate_to_symbol[f.name] in ordinal
            )
            sample = log_prob._pyro_backward_result
            if sample is not None:
                new_value = packed.pack(node["value"], node["infer"]["_dim_to_symbol"])
                for index, dim in zip(jit_iter(sample), sample._pyro_sample_dims):
                    if dim in _dims(new_value):
                        setattr(index, "_pyro_dims", _dims(sample)[1:])
                        new_value = packed.gather(new_value, index, dim)
                new_node["value"] = packed.unpack(new_value, enum_trace.symbol_to_dim)
        collapsed.add_node(node["name"] or "", **new_node)

    with _SamplePosteriorMessenger(trace=collapsed):
        return model(*args, **kwargs)


def _check_first_available_dim(first_available_dim: Any) -> int:
    if not isinstance(first_available_dim, int) or isinstance(first_available_dim, bool):
        raise TypeError(
            f"infer_discrete: first_available_dim must be a negative int, got {first_available_dim!r}"
        )
    if first_available_dim >= 0:
        raise AssertionError(
            f"infer_discrete: first_available_dim must be negative (e.g. -1 - max_plate_nesting), "
            f"got {first_available_dim}"
        )
    return first_available_dim


@overload
def infer_discrete(
    fn: None = None, first_available_dim: int | None = None, temperature: int = 1, *, strict_enumeration_warning: bool = True
) -> Callable[[Callable[..., _T]], Callable[..., _T]]: ...
@overload
def infer_discrete(
    fn: Callable[..., _T], first_available_dim: int | None = None, temperature: int = 1, *, strict_enumeration_warning: bool = True
) -> Callable[..., _T]: ...
def infer_discrete(
    fn: Callable[..., _T] | None = None,
    first_available_dim: int | None = None,
    temperature: int = 1,
    *,
    strict_enumeration_warning: bool = True,
) -> Callable[..., _T] | Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Run ``fn`` with its parallel-enumerated sites drawn from their posterior given the
    observations (``temperature=1``, forward filtering backward sampling) or set to the joint
    MAP (``temperature=0``, Viterbi for an HMM).

    The sample statements' values are the drawn ones; their log densities in a trace of the
    result mean nothing.

    :param fn: the model; without it, ``infer_discrete`` returns a decorator.
    :param first_available_dim: the rightmost dim enumeration may use, ``-1 -
        max_plate_nesting``; a negative int.
    :param temperature: 0 (MAP) or 1 (posterior sample).
    :param strict_enumeration_warning: warn if no site is enumerated.
    :raises TypeError: if ``first_available_dim`` is not an int.
    :raises AssertionError: if ``first_available_dim`` is not negative.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model(x):
    ...     z = ember.sample("z", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})
    ...     ember.sample("x", dist.Normal(4.0 * z, 1.0), obs=x)
    ...     return z
    >>> infer_discrete(model, first_available_dim=-1, temperature=0)(torch.tensor(3.5))
    tensor(1.)
    """
    first_dim = _check_first_available_dim(first_available_dim)
    if fn is None:

        def decorate(model: Callable[..., _T]) -> Callable[..., _T]:
            return infer_discrete(
                model,
                first_available_dim=first_dim,
                temperature=temperature,
                strict_enumeration_warning=strict_enumeration_warning,
            )

        return decorate
    sampler: Callable[..., _T] = functools.partial(_sample_posterior, fn, first_dim, temperature, strict_enumeration_warning)
    return sampler


class TraceEnumSample_ELBO(TraceEnum_ELBO):
    """:class:`TraceEnum_ELBO` that keeps its last trace pair, so that
    :meth:`sample_saved` draws the enumerated sites from the posterior without
    re-running the model's forward pass.

    ``elbo.loss(model, guide, *args); z = elbo.sample_saved()`` draws ``z`` as
    ``infer_discrete(replay(model, guide_trace), first_available_dim=-1 - max_plate_nesting)``
    would, for the guide trace the loss used.
    """

    _saved_state: tuple[Model, Trace, Trace, Sequence[Any], Mapping[str, Any]] | None = None

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = super()._get_trace(model, guide, args, kwargs)
        for node in model_trace.nodes.values():
            if node["type"] == "sample" and not node["is_observed"]:
                require_backward(node["packed"]["unscaled_log_prob"])
        self._saved_state = model, model_trace, guide_trace, args, kwargs
        return model_trace, guide_trace

    def sample_saved(self) -> Any:
        """Run the model once more with its enumerated sites drawn from the posterior of the
        last loss computation; returns the model's return value."""
        if self._saved_state is None:
            raise RuntimeError("TraceEnumSample_ELBO.sample_saved() needs a loss computed first")
        model, model_trace, guide_trace, args, kwargs = self._saved_state
        replayed = replay(model, trace=guide_trace)
        return _sample_posterior_from_trace(replayed, model_trace, 1, self.strict_enumeration_warning, *args, **kwargs)
