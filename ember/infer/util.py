"""Helpers shared by the ELBOs: validation switches, plate-aware sums, and tensor utilities.

The model/guide and site checks live in ``ember.infer._checks`` and DiCE in
``ember.infer._dice``; both are public here, at Pyro's ``pyro.infer.util`` names.

The validation flag for inference lives in :mod:`ember.poutine.runtime` with the others;
:func:`enable_validation` here switches only that one (``ember.enable_validation`` switches all).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

import torch

from ember.distributions.util import is_identically_zero
from ember.infer._checks import (
    check_fully_reparametrized,
    check_if_enumerated,
    check_model_guide_match,
    check_site_shape,
    check_traceenum_requirements,
    check_traces_match,
)
from ember.infer._dice import LAST_CACHE_SIZE, Dice, compute_site_dice_factor
from ember.poutine import runtime
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample

__all__ = [
    "CloneMixin",
    "Dice",
    "LAST_CACHE_SIZE",
    "MultiFrameTensor",
    "check_fully_reparametrized",
    "check_if_enumerated",
    "check_model_guide_match",
    "check_site_shape",
    "check_traceenum_requirements",
    "check_traces_match",
    "compute_site_dice_factor",
    "enable_validation",
    "get_dependent_plate_dims",
    "get_plate_stacks",
    "is_identically_zero",
    "is_validation_enabled",
    "plate_log_prob_sum",
    "torch_backward",
    "torch_exp",
    "torch_item",
    "torch_sum",
    "validation_enabled",
    "zero_grads",
]


def enable_validation(is_validate: bool) -> None:
    """Turn the inference checks (model/guide match, site shapes) on or off."""
    runtime.set_validation(infer=is_validate)


def is_validation_enabled() -> bool:
    """Whether the inference checks are on."""
    return runtime.is_infer_validation_enabled()


@contextmanager
def validation_enabled(is_validate: bool = True) -> Iterator[None]:
    """The inference checks switched on (or off) inside, restored on exit."""
    old = runtime.is_infer_validation_enabled()
    try:
        runtime.set_validation(infer=is_validate)
        yield
    finally:
        runtime.set_validation(infer=old)


def torch_item(x: torch.Tensor | float) -> float:
    """``x.item()`` for a tensor, ``x`` itself for a number.

    >>> torch_item(torch.tensor(2.5)), torch_item(1.5)
    (2.5, 1.5)
    """
    if isinstance(x, torch.Tensor):
        return x.item()
    return x


def torch_backward(x: torch.Tensor | float, retain_graph: bool | None = None) -> None:
    """``x.backward()`` when ``x`` is a tensor with a graph; nothing otherwise."""
    if isinstance(x, torch.Tensor) and x.grad_fn is not None:
        torch.autograd.backward(x, retain_graph=retain_graph)


def torch_exp(x: torch.Tensor | float) -> torch.Tensor | float:
    """``exp`` of a tensor or of a number."""
    if isinstance(x, torch.Tensor):
        return torch.exp(x)
    return math.exp(x)


def torch_sum(tensor: torch.Tensor, dims: Iterable[int]) -> torch.Tensor:
    """Sum out the negative ``dims`` that ``tensor`` has; skip the ones it lacks.

    >>> torch_sum(torch.ones(2, 3), [-1, -3]).shape
    torch.Size([2])
    """
    dims = list(dims)
    assert all(d < 0 for d in dims)
    present = [d for d in dims if -tensor.dim() <= d]
    return tensor.sum(present) if present else tensor


def zero_grads(tensors: Iterable[torch.Tensor]) -> None:
    """Replace the gradient of each tensor that has one with zeros."""
    for p in tensors:
        if p.grad is not None:
            p.grad = torch.zeros_like(p.grad)


def get_plate_stacks(trace: Trace) -> dict[str, list[CondIndepStackFrame]]:
    """The vectorized plate frames around each sample site (subsample sites left out)."""
    return {
        name: [f for f in site["cond_indep_stack"] if f.vectorized]
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site)
    }


def get_dependent_plate_dims(sites: Iterable[Message]) -> list[int]:
    """The dims of the vectorized plates that enclose some but not all of ``sites``."""
    stacks = [set(site["cond_indep_stack"]) for site in sites if site["type"] == "sample"]
    if not stacks:
        return []
    every = set().union(*stacks)
    common = every.intersection(*stacks)
    return sorted({f.dim for f in every - common if f.dim is not None})


class MultiFrameTensor(dict[frozenset[CondIndepStackFrame], torch.Tensor]):
    """Tensors summed per set of enclosing vectorized plates, reducible to any plate set.

    Keys are frozensets of vectorized frames; :meth:`sum_to` sums each value over the
    plates the target does not share, then adds them up.

    :param items: ``(cond_indep_stack, tensor)`` pairs to start with.

    >>> outer = CondIndepStackFrame("N", -1, 3, 0)
    >>> costs = MultiFrameTensor(((outer,), torch.ones(3)), ((), torch.tensor(2.0)))
    >>> costs.sum_to(()), costs.sum_to((outer,))
    (tensor(5.), tensor([3., 3., 3.]))
    """

    def __init__(self, *items: tuple[Sequence[CondIndepStackFrame], torch.Tensor]) -> None:
        super().__init__()
        self.add(*items)

    def add(self, *items: tuple[Sequence[CondIndepStackFrame], torch.Tensor]) -> None:
        """Add ``(cond_indep_stack, tensor)`` pairs, summing tensors that share a plate set."""
        for cond_indep_stack, value in items:
            frames = frozenset(f for f in cond_indep_stack if f.vectorized)
            assert all(f.dim is not None and -value.dim() <= f.dim < 0 for f in frames)
            old = self.get(frames)
            self[frames] = value if old is None else old + value

    def sum_to(self, target_frames: Iterable[CondIndepStackFrame]) -> torch.Tensor | float:
        """The total, summed over every plate not in ``target_frames`` (``0.0`` if empty)."""
        target = set(target_frames)
        total: torch.Tensor | None = None
        for frames, value in self.items():
            for f in frames:
                assert f.dim is not None
                if f not in target and value.shape[f.dim] != 1:
                    value = value.sum(f.dim, True)
            while value.shape and value.shape[0] == 1:
                value = value.squeeze(0)
            total = value if total is None else total + value
        return 0.0 if total is None else total

    def __repr__(self) -> str:
        inner = ",\n\t".join(f"({set(frames)}, ...)" for frames in self)
        return f"{type(self).__name__}({inner})"


def plate_log_prob_sum(trace: Trace, plate_symbol: str) -> torch.Tensor:
    """The sum of every sample site's log density, over all dims but one plate's.

    Call after :meth:`~ember.poutine.trace_struct.Trace.pack_tensors`; ``plate_symbol`` is
    the plate's symbol (``trace.plate_to_symbol[name]``).

    >>> import ember
    >>> import ember.distributions as dist
    >>> from ember.poutine import trace
    >>> from ember.poutine.util import prune_subsample_sites
    >>> def model():
    ...     with ember.plate("particles", 3):
    ...         ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.zeros(3))
    >>> tr = prune_subsample_sites(trace(model).get_trace())
    >>> tr.compute_log_prob(); tr.pack_tensors()
    >>> plate_log_prob_sum(tr, tr.plate_to_symbol["particles"]).shape
    torch.Size([3])
    """
    total: torch.Tensor | float = 0.0
    for site in trace.nodes.values():
        if site["type"] != "sample":
            continue
        log_prob = site["packed"]["log_prob"]
        dims: str = getattr(log_prob, "_pyro_dims")
        total = total + torch.einsum(f"{dims}->{plate_symbol}", log_prob)
    return torch.as_tensor(total)


class CloneMixin:
    """Adds :meth:`clone` to a dataclass whose fields are tensors or dicts of tensors.

    >>> @dataclasses.dataclass
    ... class Pair(CloneMixin):
    ...     a: torch.Tensor
    ...     b: dict[str, torch.Tensor]
    >>> p = Pair(torch.zeros(2), {"c": torch.ones(1)})
    >>> q = p.clone(); q.a += 1
    >>> p.a, q.b["c"] is p.b["c"]
    (tensor([0., 0.]), False)
    """

    def clone(self) -> Self:
        """A copy with every tensor cloned (dict fields are copied key by key)."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]  # the mixin is for dataclasses only
            value = getattr(self, field.name)
            if isinstance(value, dict):
                values[field.name] = {key: item.clone() for key, item in value.items()}
            else:
                values[field.name] = value.clone()
        return type(self)(**values)
