"""Prior and posterior predictive samples: the model re-run on posterior draws.

:class:`Predictive` conditions the model on each posterior draw (given as tensors with a
leading sample dim, or drawn from a guide) and collects the values of the other sites, one
run per draw or (``parallel=True``) all draws at once in an outermost plate. The model runs
without gradients and with log densities masked off (``mask(False)``), since only values
are wanted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ember.infer.autoguide.initialization import InitMessenger, init_to_sample
from ember.poutine.handlers import block, condition, mask, trace
from ember.poutine.runtime import value_error_like
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites
from ember.primitives import plate
from ember._util import warn_at_caller

__all__ = ["Predictive"]

Model = Callable[..., Any]
Samples = dict[str, torch.Tensor]
ReturnSites = list[str] | tuple[str, ...] | set[str] | None

_VECTORIZE_PLATE = "_num_predictive_samples"


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


def _values_only(model: Model) -> Model:
    """``model`` without gradients and with every log density masked off."""
    masked = mask(model, mask=False)

    def run(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return masked(*args, **kwargs)

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
) -> _PredictiveResults:
    model_kwargs = {} if model_kwargs is None else model_kwargs
    model = _values_only(model)
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


class Predictive(torch.nn.Module):
    """Samples from the predictive distribution of ``model``.

    With ``posterior_samples`` (tensors with a leading sample dim, by site name) the model is
    run conditioned on each draw; with a ``guide``, draws of every guide site come from the
    guide first; with neither, the model runs from the prior ``num_samples`` times.

    :param model: the model.
    :param posterior_samples: posterior draws by site name.
    :param guide: a guide to draw the posterior from (not together with ``posterior_samples``).
    :param num_samples: how many draws; when ``posterior_samples`` is given, their leading
        size wins (with a warning if the two differ).
    :param return_sites: the sites to return (``"_RETURN"`` for the model's return value);
        ``()`` returns the sample sites not in ``posterior_samples`` (with a guide: every
        site), ``None`` every sample site.
    :param parallel: run all draws at once inside an outermost
        ``plate("_num_predictive_samples", num_samples)``; every batch dim of the model must
        be declared by a plate.
    :raises ValueError: with neither ``posterior_samples`` nor ``num_samples``, or with both
        ``posterior_samples`` and ``guide``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     mu = ember.sample("mu", dist.Normal(0.0, 1.0))
    ...     with ember.plate("N", 3):
    ...         ember.sample("y", dist.Normal(mu, 1.0))
    >>> {k: tuple(v.shape) for k, v in Predictive(model, num_samples=5)().items()}
    {'mu': (5, 1), 'y': (5, 3)}
    >>> {k: tuple(v.shape) for k, v in Predictive(model, {"mu": torch.zeros(4)})().items()}
    {'y': (4, 3)}
    """

    def __init__(
        self,
        model: Model,
        posterior_samples: Mapping[str, torch.Tensor] | None = None,
        guide: Model | None = None,
        num_samples: int | None = None,
        return_sites: ReturnSites = (),
        parallel: bool = False,
    ) -> None:
        super().__init__()
        if posterior_samples is None:
            if num_samples is None:
                raise ValueError("Either posterior_samples or num_samples must be specified.")
            posterior_samples = {}
        if num_samples is not None:
            _check_num_samples(num_samples)
        _check_leading_dims(posterior_samples)
        for sample in posterior_samples.values():
            batch_size = sample.shape[0]
            if num_samples is None:
                num_samples = batch_size
            elif num_samples != batch_size:
                warn_at_caller(
                    f"Sample's leading dimension size {batch_size} is different from the provided "
                    f"{num_samples} num_samples argument. Defaulting to {batch_size}.",
                    UserWarning,
                )
                num_samples = batch_size
        if num_samples is None:
            raise ValueError("No sample sites in posterior samples to infer `num_samples`.")
        if guide is not None and posterior_samples:
            raise ValueError("`posterior_samples` cannot be provided with the `guide` argument.")
        if return_sites is not None and not isinstance(return_sites, (list, tuple, set)):
            # AssertionError is the type Pyro raises here.
            raise AssertionError(f"return_sites must be a list, tuple or set, got {type(return_sites).__name__}")
        self.model = model
        self.posterior_samples: Mapping[str, torch.Tensor] = posterior_samples
        self.num_samples: int = num_samples
        self.guide = guide
        self.return_sites = return_sites
        self.parallel = parallel

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Draw predictive samples (see :meth:`forward`)."""
        result: dict[str, torch.Tensor] = super().__call__(*args, **kwargs)
        return result

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """:meth:`forward`'s values as a tuple sorted by site name (traceable by the JIT)."""
        result = self.forward(*args, **kwargs)
        return tuple(value for _, value in sorted(result.items()))

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Draw predictive samples; arguments are passed to the model (and guide).

        :returns: the values of the returned sites by name, each with a leading sample dim.
        """
        return_sites = self.return_sites
        if self.guide is not None:
            # With a guide, every site comes back unless the sites are named.
            return_sites = return_sites or None
        return _predictive(
            self.model,
            self._posterior_samples(args, kwargs),
            self.num_samples,
            return_sites=return_sites,
            parallel=self.parallel,
            model_args=args,
            model_kwargs=kwargs,
        ).samples

    def _posterior_samples(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
        """The values to condition the model on: with a guide, its draws of all its sites."""
        if self.guide is None:
            return self.posterior_samples
        # With a guide there are no posterior samples, so return_sites=None returns the same
        # sites as the default (the sites not in them).
        return _predictive(
            self.guide,
            self.posterior_samples,
            self.num_samples,
            return_sites=None,
            parallel=self.parallel,
            model_args=args,
            model_kwargs=kwargs,
        ).samples

    def get_samples(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Deprecated: call the :class:`Predictive` (its :meth:`forward`)."""
        warn_at_caller("The method `.get_samples` has been deprecated in favor of `.forward`.", DeprecationWarning)
        return self.forward(*args, **kwargs)

    def get_vectorized_trace(self, *args: Any, **kwargs: Any) -> Trace:
        """One trace of the model with every draw at once in the ``_num_predictive_samples``
        plate (the model's batch dims must all be declared by plates)."""
        result = _predictive(
            self.model,
            self._posterior_samples(args, kwargs),
            self.num_samples,
            parallel=True,
            model_args=args,
            model_kwargs=kwargs,
        ).trace
        assert isinstance(result, Trace)
        return result
