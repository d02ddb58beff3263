"""The engine of :mod:`ember.infer.predictive`: the model re-run on posterior draws.

:func:`_predictive` conditions the model on each posterior draw (tensors with a leading
sample dim) and collects the values of the other sites, one run per draw or
(``parallel=True``) all draws at once in an outermost plate. The model runs without
gradients and, unless the log densities are wanted (``mask=False``, for the weights of
``WeighedPredictive``), with them masked off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ember.infer.autoguide.initialization import InitMessenger, init_to_sample
from ember.poutine.handlers import block, condition, mask, trace
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites
from ember.primitives import plate
from ember.poutine.runtime import value_error_like

__all__: list[str] = []

Model = Callable[..., Any]
Samples = dict[str, torch.Tensor]
ReturnSites = list[str] | tuple[str, ...] | set[str] | None

_VECTORIZE_PLATE = "_num_predictive_samples"


def _guess_max_plate_nesting(model: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    """The number of plate dims the model uses, from one blocked run (static structure assumed)."""
    with block():
        model_trace = trace(model).get_trace(*args, **kwargs)
    dims = [
        frame.dim
        for site in model_trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.dim is not None
    ]
    return -min(dims) if dims else 0


@dataclass(frozen=True, eq=False)
class _PredictiveResults:
    """The collected samples, and the trace (parallel) or traces (sequential) they came from."""

    samples: dict[str, Any]
    trace: Trace | list[Trace]


def _values_only(model: Model, masked: bool = True) -> Model:
    """``model`` without gradients and (if ``masked``) with every log density masked off."""
    inner = mask(model, mask=False) if masked else model

    def run(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return inner(*args, **kwargs)

    return run


def _return_site_shapes(
    model_trace: Trace,
    posterior_samples: Mapping[str, torch.Tensor],
    num_samples: int,
    max_plate_nesting: int,
    return_sites: ReturnSites,
) -> dict[str, tuple[int, ...] | None]:
    """The output shape of each site to return (``None`` for a non-tensor ``_RETURN``).

    Sites listed in ``return_sites`` are returned; with ``None``, every sample site; with an
    empty collection, the sample sites not in ``posterior_samples``.
    """
    shapes: dict[str, tuple[int, ...] | None] = {}
    for name in model_trace.stochastic_nodes + model_trace.observation_nodes:
        site = model_trace.nodes[name]
        if return_sites:
            if name not in return_sites:
                continue
        elif return_sites is not None and name in posterior_samples:
            continue
        fn: Any = site["fn"]
        padding = (1,) * (max_plate_nesting - len(fn.batch_shape))
        shapes[name] = (num_samples, *padding, *site["value"].shape)
    if return_sites is not None and "_RETURN" in return_sites:
        value = model_trace.nodes["_RETURN"]["value"]
        shapes["_RETURN"] = (num_samples, *value.shape) if isinstance(value, torch.Tensor) else None
    return shapes


def _predictive(
    model: Model,
    posterior_samples: Mapping[str, torch.Tensor],
    num_samples: int,
    return_sites: ReturnSites = (),
    parallel: bool = False,
    model_args: Sequence[Any] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    mask: bool = True,
) -> _PredictiveResults:
    model_kwargs = {} if model_kwargs is None else model_kwargs
    model = _values_only(model, masked=mask)
    # Shapes come from one run with latent sites drawn from the prior (values discarded).
    initialized = InitMessenger(init_to_sample)(model)
    max_plate_nesting = _guess_max_plate_nesting(initialized, model_args, model_kwargs)
    model_trace = prune_subsample_sites(trace(initialized).get_trace(*model_args, **model_kwargs))
    shapes = _return_site_shapes(model_trace, posterior_samples, num_samples, max_plate_nesting, return_sites)
    if not parallel:
        return _predictive_sequential(model, posterior_samples, model_args, model_kwargs, num_samples, shapes)

    reshaped = {}
    for name, sample in posterior_samples.items():
        event_shape = sample.shape[1:]
        padding = (1,) * (max_plate_nesting - len(event_shape))
        reshaped[name] = sample.reshape((num_samples, *padding, *event_shape))
    vectorize = plate(_VECTORIZE_PLATE, num_samples, dim=-max_plate_nesting - 1)
    tr = trace(condition(vectorize(model), reshaped)).get_trace(*model_args, **model_kwargs)
    predictions: dict[str, Any] = {}
    for name, shape in shapes.items():
        value = tr.nodes[name]["value"]
        if shape is None:
            predictions[name] = value
        elif value.numel() < math.prod(shape):
            predictions[name] = value.expand(shape)
        else:
            predictions[name] = value.reshape(shape)
    return _PredictiveResults(samples=predictions, trace=tr)


def _predictive_sequential(
    model: Model,
    posterior_samples: Mapping[str, torch.Tensor],
    model_args: Sequence[Any],
    model_kwargs: Mapping[str, Any],
    num_samples: int,
    shapes: Mapping[str, tuple[int, ...] | None],
) -> _PredictiveResults:
    traces = []
    collected: list[dict[str, Any]] = []
    for i in range(num_samples):
        draw = {name: value[i] for name, value in posterior_samples.items()}
        tr = trace(condition(model, draw)).get_trace(*model_args, **model_kwargs)
        traces.append(tr)
        collected.append({name: tr.nodes[name]["value"] for name in shapes})
    samples: dict[str, Any] = {}
    for name, shape in shapes.items():
        values = [c[name] for c in collected]
        # A non-tensor _RETURN comes back as the list of its values (Pyro fails on it).
        samples[name] = values if shape is None else torch.stack(values).reshape(shape)
    return _PredictiveResults(samples=samples, trace=traces)


def _check_num_samples(num_samples: object) -> None:
    """Reject a ``num_samples`` that is not a positive integer (with Pyro's error type)."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int):
        raise value_error_like(TypeError, f"Predictive: num_samples must be a positive integer, got {num_samples!r}")
    if num_samples == 0:
        raise value_error_like(ZeroDivisionError, "Predictive: num_samples must be a positive integer, got 0")
    if num_samples < 0:
        raise value_error_like(RuntimeError, f"Predictive: num_samples must be a positive integer, got {num_samples}")


def _check_leading_dims(posterior_samples: Mapping[str, torch.Tensor]) -> None:
    """Reject posterior samples whose leading (sample) dims disagree, naming each site's shape."""
    sizes = {name: tuple(sample.shape) for name, sample in posterior_samples.items()}
    leading = {shape[0] if shape else None for shape in sizes.values()}
    if len(leading) > 1:
        listed = ", ".join(f"{name!r}: {shape}" for name, shape in sizes.items())
        raise value_error_like(
            RuntimeError,
            f"Predictive: posterior_samples must share their leading (sample) dim, got shapes {listed}",
        )
