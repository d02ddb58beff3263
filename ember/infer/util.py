"""Helpers shared by the ELBOs: validation, model/guide checks, and plate-aware sums.

The validation flag for inference lives in :mod:`ember.poutine.runtime` with the others;
:func:`enable_validation` here switches only that one (``ember.enable_validation`` switches all).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import zip_longest
from typing import Any, Self

import torch

from ember.distributions.util import is_identically_zero
from ember.infer._dice import Dice, compute_site_dice_factor
from ember.poutine import runtime
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample
from ember._util import warn_at_caller

__all__ = [
    "CloneMixin",
    "Dice",
    "MultiFrameTensor",
    "check_fully_reparametrized",
    "check_if_enumerated",
    "check_model_guide_match",
    "check_site_shape",
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


def _sample_names(trace: Trace, *, subsample: bool, observed: bool = True) -> set[str]:
    return {
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample"
        and (observed or not site["is_observed"])
        and site_is_subsample(site) == subsample
    }


def check_model_guide_match(model_trace: Trace, guide_trace: Trace, max_plate_nesting: float = math.inf) -> None:
    """Check that a guide fits its model: same latent sites, shapes and plates.

    Warns about latent sites in only one of the two, auxiliary guide sites that the model
    samples, and guide plates missing from the model. Raises ``ValueError`` where the
    model and guide disagree on a site's event dim or shape (dims left of
    ``max_plate_nesting`` may broadcast), or where a guide factor does not say whether it
    is reparameterized, and ``NotImplementedError`` for model-side sequential enumeration.

    :param model_trace: the model's trace, replayed against the guide's.
    :param guide_trace: the guide's trace.
    :param max_plate_nesting: how many rightmost batch dims are plate dims.
    """
    guide_vars = _sample_names(guide_trace, subsample=False)
    aux_vars = {
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("is_auxiliary")
    }
    model_vars = _sample_names(model_trace, subsample=False, observed=False)
    enum_vars = {
        name
        for name in model_vars - guide_vars
        if model_trace.nodes[name]["infer"].get("_enumerate_dim") is not None
    }
    if aux_vars & model_vars:
        warn_at_caller(f"Found auxiliary vars in the model: {aux_vars & model_vars}")
    if not guide_vars <= model_vars | aux_vars:
        warn_at_caller(
            "Found non-auxiliary vars in guide but not model, consider marking these "
            f"infer={{'is_auxiliary': True}}:\n{guide_vars - aux_vars - model_vars}"
        )
    if not model_vars <= guide_vars | enum_vars:
        bad_sites = model_vars - guide_vars - enum_vars
        for name in bad_sites:
            if model_trace.nodes[name]["infer"].get("enumerate") == "sequential":
                raise NotImplementedError(
                    f"At site {name!r}, model-side sequential enumeration is not implemented. "
                    "Try parallel enumeration or guide-side enumeration."
                )
        warn_at_caller(f"Found vars in model but not guide: {bad_sites}")

    for name in model_vars & guide_vars:
        _check_shapes_agree(name, model_trace.nodes[name], guide_trace.nodes[name], max_plate_nesting)

    model_plates = _sample_names(model_trace, subsample=True, observed=False)
    guide_plates = _sample_names(guide_trace, subsample=True)
    if not guide_plates <= model_plates:
        warn_at_caller(f"Found plate statements in guide but not model: {guide_plates - model_plates}")

    for name, site in guide_trace.nodes.items():
        if site["type"] != "sample" or not site["infer"].get("is_auxiliary"):
            continue
        fn = site["fn"]
        if type(fn).__name__ == "Unit" and "has_rsample" not in fn.__dict__:
            raise ValueError(
                f'At guide site pyro.factor("{name}",...), missing specification of has_rsample. '
                "Please either set has_rsample=True if the factor statement arises from "
                "reparametrized sampling or has_rsample=False otherwise."
            )


def _check_shapes_agree(name: str, model_site: Message, guide_site: Message, max_plate_nesting: float) -> None:
    model_fn: Any = model_site["fn"]
    guide_fn: Any = guide_site["fn"]
    if hasattr(model_fn, "event_dim") and hasattr(guide_fn, "event_dim"):
        if model_fn.event_dim != guide_fn.event_dim:
            raise ValueError(
                f"Model and guide event_dims disagree at site '{name}': "
                f"{model_fn.event_dim} vs {guide_fn.event_dim}"
            )
    if not (hasattr(model_fn, "shape") and hasattr(guide_fn, "shape")):
        return
    model_shape = model_fn.shape(*model_site["args"], **model_site["kwargs"])
    guide_shape = guide_fn.shape(*guide_site["args"], **guide_site["kwargs"])
    if model_shape == guide_shape:
        return
    # Dims left of the plate dims may broadcast (e.g. enumeration dims).
    if len(model_shape) > max_plate_nesting:
        model_shape = model_shape[len(model_shape) - int(max_plate_nesting) - model_fn.event_dim :]
    if len(guide_shape) > max_plate_nesting:
        guide_shape = guide_shape[len(guide_shape) - int(max_plate_nesting) - guide_fn.event_dim :]
    if model_shape == guide_shape:
        return
    for model_size, guide_size in zip_longest(reversed(model_shape), reversed(guide_shape), fillvalue=1):
        if model_size != guide_size:
            raise ValueError(f"Model and guide shapes disagree at site '{name}': {model_shape} vs {guide_shape}")


def check_site_shape(site: Message, max_plate_nesting: float) -> None:
    """Check that ``site["log_prob"]`` has the shape its enclosing plates imply.

    :raises ValueError: on a plate dim collision, more plates than ``max_plate_nesting``,
        a log density whose plate dims are wrong, or an enumeration dim conflict.
    """
    name = site["name"]
    actual_shape = list(site["log_prob"].shape)
    expected: list[int | None] = []
    for f in site["cond_indep_stack"]:
        if f.dim is None:
            continue
        assert f.dim < 0
        if len(expected) < -f.dim:
            padding: list[int | None] = [None] * (-f.dim - len(expected))
            expected = padding + expected
        if expected[f.dim] is not None:
            raise ValueError(
                f'at site "{name}" within plate("{f.name}", dim={f.dim}), dim collision\n'
                "  Try setting dim arg in other plates."
            )
        expected[f.dim] = f.size
    expected_shape = [-1 if size is None else size for size in expected]

    if len(expected_shape) > max_plate_nesting:
        raise ValueError(
            f'at site "{name}", plate stack overflow\n'
            f"  Try increasing max_plate_nesting to at least {len(expected_shape)}"
        )
    if max_plate_nesting < len(actual_shape):
        actual_shape = actual_shape[len(actual_shape) - int(max_plate_nesting) :]
    for actual_size, expected_size in zip_longest(reversed(actual_shape), reversed(expected_shape), fillvalue=1):
        if expected_size != -1 and expected_size != actual_size:
            raise ValueError(
                f'at site "{name}", invalid log_prob shape\n'
                f"  Expected {expected_shape}, actual {actual_shape}\n"
                "  Try one of the following fixes:\n"
                "  - enclose the batched tensor in a with pyro.plate(...): context\n"
                "  - .to_event(...) the distribution being sampled\n"
                "  - .permute() data dimensions"
            )

    enum_dim = site["infer"].get("_enumerate_dim")
    if enum_dim is not None:
        fn: Any = site["fn"]
        batch_shape = fn.batch_shape
        if len(batch_shape) >= -enum_dim and batch_shape[enum_dim] != 1:
            raise ValueError(
                f'Enumeration dim conflict at site "{name}"\n  Try increasing pyro.markov history size'
            )


def check_if_enumerated(guide_trace: Trace) -> None:
    """Warn when the guide has sites configured for enumeration (only TraceEnum_ELBO enumerates).

    The text repeats Pyro's, including its join separator.
    """
    enumerated = [
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("enumerate")
    ]
    if enumerated:
        warn_at_caller(
            "Found sample sites configured for enumeration:, ".join(enumerated)
            + "\nIf you want to enumerate sites, you need to use TraceEnum_ELBO instead."
        )


def check_fully_reparametrized(guide_site: Message) -> None:
    """Raise ``NotImplementedError`` unless ``guide_site`` is sampled by reparameterization."""
    _, score_function, entropy_term = guide_site["score_parts"]
    fn: Any = guide_site["fn"]
    if not (fn.has_rsample and not is_identically_zero(entropy_term) and is_identically_zero(score_function)):
        raise NotImplementedError("All distributions in the guide must be fully reparameterized.")


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
