"""Score many sample sites of a trace with one ``log_prob`` call per group of like sites.

An HMM of ``T`` steps has ``2 T`` sample sites whose distributions differ only in their
parameter values: ``Categorical`` rows of a transition matrix and ``Normal`` emissions.
Scoring them one by one costs a few small tensor ops each, forward and backward; here the
sites with the same family and shapes are stacked, scored once, and the result is split
back into per-site tensors (one stack and one unbind node in the autograd graph instead of
a handful of nodes per site). The values are those the per-site ``log_prob`` gives.

Only plain ``Normal``, ``Categorical`` and ``Bernoulli`` sites with tensor values are
batched; a group whose parameters or values fail validation is left to the per-site
scoring of :meth:`~ember.poutine.trace_struct.Trace.compute_log_prob`, which raises the
error naming the site.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import torch
from torch.distributions.utils import probs_to_logits

from ember.distributions.torch import Normal
from ember.distributions.torch_discrete import Bernoulli, Categorical
from ember.distributions.util import broadcast_shape, scale_and_mask
from ember.poutine.message import Message
from ember.poutine.trace_struct import Trace
from ember._util import warn_at_caller

__all__ = ["score_in_batches"]

# A group needs at least this many sites: stacking a pair or so costs more than it saves.
_MIN_GROUP = 4


def _broadcast(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = broadcast_shape(a.shape, b.shape)
    return a.expand(shape), b.expand(shape)


def _stack_padded(tensors: list[torch.Tensor], rank: int) -> torch.Tensor:
    """Stack same-shaped tensors along a new dim 0, then left-pad them to ``rank`` dims."""
    stacked = torch.stack(tensors)
    shape = tensors[0].shape
    if len(shape) < rank:
        stacked = stacked.reshape((len(tensors),) + (1,) * (rank - len(shape)) + tuple(shape))
    return stacked


def _normal_params(fn: Normal) -> tuple[torch.Tensor, ...]:
    return fn.loc, fn.scale


def _normal_log_prob(params: list[torch.Tensor], value: torch.Tensor) -> torch.Tensor:
    loc, scale = params
    # Normal.log_prob, written once for the stacked sites.
    return -((value - loc) ** 2) / (2 * scale**2) - scale.log() - math.log(math.sqrt(2 * math.pi))


def _categorical_params(fn: Categorical) -> tuple[torch.Tensor, ...]:
    # Use whichever parameter the distribution holds, without computing the other per site.
    return (fn.__dict__["logits"],) if "logits" in fn.__dict__ else (fn.__dict__["probs"],)


def _categorical_log_prob(params: list[torch.Tensor], value: torch.Tensor, from_probs: bool) -> torch.Tensor:
    (param,) = params
    logits = probs_to_logits(param) if from_probs else param
    index, logits = _broadcast(value.long().unsqueeze(-1), logits)
    return logits.gather(-1, index[..., :1]).squeeze(-1)


def _bernoulli_params(fn: Bernoulli) -> tuple[torch.Tensor, ...]:
    return (fn.logits,)


def _bernoulli_log_prob(params: list[torch.Tensor], value: torch.Tensor) -> torch.Tensor:
    (logits,) = params
    logits, value = _broadcast(logits, value)
    return -torch.nn.functional.binary_cross_entropy_with_logits(logits, value, reduction="none")


def _group_key(site: Message) -> tuple[Hashable, int, list[torch.Tensor]] | None:
    """The batching key of a site, the rank its log density has, and its parameters."""
    fn: Any = site["fn"]
    value = site["value"]
    kind = type(fn)
    event: int
    if site["args"] or site["kwargs"] or not isinstance(value, torch.Tensor):
        return None
    tag: Hashable
    if kind is Normal:
        params = list(_normal_params(fn))
        tag = "normal"
        event = 0
    elif kind is Categorical:
        params = list(_categorical_params(fn))
        tag = ("categorical", "logits" in fn.__dict__)
        event = 1
    elif kind is Bernoulli:
        params = list(_bernoulli_params(fn))
        tag = "bernoulli"
        event = 0
    else:
        return None
    batch_shape = fn.batch_shape
    value_shape = value.shape
    rank = max(len(value_shape), len(batch_shape))
    # Shapes that do not broadcast are left to the per-site scoring, which names the site.
    for a, b in zip(_pad_shape(value_shape, rank), _pad_shape(batch_shape, rank)):
        if a != b and a != 1 and b != 1:
            return None
    # Raw shapes in the key: a group is stacked as is, then padded by one reshape.
    shapes = tuple(tuple(p.shape) for p in params)
    key = (tag, rank, shapes, tuple(value_shape), value.dtype, params[0].dtype, value.device, bool(fn._validate_args))
    return key, rank, params


def _pad_shape(shape: torch.Size | tuple[int, ...], rank: int) -> tuple[int, ...]:
    return (1,) * (rank - len(shape)) + tuple(shape)


def _score_group(sites: list[Message], rank: int, params: list[list[torch.Tensor]]) -> torch.Tensor | None:
    fn: Any = sites[0]["fn"]
    kind = type(fn)
    event = 1 if kind is Categorical else 0
    stacked = [_stack_padded([p[i] for p in params], rank + event) for i in range(len(params[0]))]
    value = _stack_padded([site["value"] for site in sites], rank)
    if fn._validate_args and not bool(fn.support.check(value).all()):
        return None
    if kind is Normal:
        return _normal_log_prob(stacked, value)
    if kind is Categorical:
        return _categorical_log_prob(stacked, value, from_probs="logits" not in fn.__dict__)
    return _bernoulli_log_prob(stacked, value)


def _warn_if_bad(site_sums: list[tuple[str, torch.Tensor]], total: torch.Tensor) -> None:
    value = total.item()
    if math.isfinite(value) or value == -math.inf:
        return
    for name, site_sum in site_sums:
        number = site_sum.item()
        if math.isnan(number):
            warn_at_caller(f"Encountered NaN: log_prob_sum at site '{name}'", UserWarning)
        elif number == math.inf:
            warn_at_caller(f"Encountered +inf: log_prob_sum at site '{name}'", UserWarning)


def score_in_batches(tr: Trace, validate: bool) -> None:
    """Fill ``unscaled_log_prob``, ``log_prob`` and ``log_prob_sum`` at the batchable sites.

    Sites left unscored (no group, or a group that failed validation) are scored later by
    :meth:`~ember.poutine.trace_struct.Trace.compute_log_prob`, which skips the others.

    :param tr: a trace whose sample sites have no ``log_prob`` yet.
    :param validate: check the sums for NaN and ``+inf`` as ``compute_log_prob`` does.
    """
    groups: dict[Hashable, tuple[int, list[str], list[Message], list[list[torch.Tensor]]]] = {}
    for name, site in tr.nodes.items():
        if site["type"] != "sample" or "log_prob" in site:
            continue
        found = _group_key(site)
        if found is None:
            continue
        key, rank, site_params = found
        entry = groups.setdefault(key, (rank, [], [], []))
        entry[1].append(name)
        entry[2].append(site)
        entry[3].append(site_params)
    checked: list[tuple[str, torch.Tensor]] = []
    totals: list[torch.Tensor] = []
    for rank, names, sites, params in groups.values():
        if len(sites) < _MIN_GROUP:
            continue
        log_prob = _score_group(sites, rank, params)
        if log_prob is None:
            continue
        sums = log_prob.reshape(len(sites), -1).sum(1)
        totals.append(sums.sum())
        for name, site, unscaled, site_sum in zip(names, sites, log_prob.unbind(0), sums.unbind(0)):
            site["unscaled_log_prob"] = unscaled
            scaled = scale_and_mask(unscaled, site["scale"], site["mask"])
            site["log_prob"] = scaled
            if scaled is not unscaled:
                site_sum = scaled.sum()
            site["log_prob_sum"] = site_sum
            checked.append((name, site_sum))
    if validate and totals:
        _warn_if_bad(checked, torch.stack(totals).sum())
