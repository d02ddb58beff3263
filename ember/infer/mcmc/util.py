"""Model set-up for HMC/NUTS (:func:`initialize_model`) and the helpers that read MCMC output.

:func:`initialize_model` traces the model once to find its latent sites, their supports and
shapes, picks a transform to unconstrained space per site, finds a valid starting point with an
init strategy, and returns Pyro's 4-tuple. The potential it returns is dict-based and
differentiable; its ``flat`` attribute builds the fast flat evaluator the kernels use
(:mod:`ember.infer.mcmc.potential`).
"""

from __future__ import annotations

import functools
import math
import traceback
from itertools import product
from typing import Any, Callable, Mapping, Sequence

import torch
from torch.distributions import biject_to
from torch.distributions.transforms import Transform

from ember import poutine
from ember.infer.autoguide.initialization import InitMessenger, init_to_uniform
from ember.infer.mcmc.potential import FlatPotential, Layout, ModelPotential, StepExtension
from ember.ops import stats
from ember.ops.integrator import potential_grad
from ember.poutine.enumerate_config import config_enumerate
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample
from ember._util import warn_at_caller

__all__ = [
    "diagnostics",
    "diagnostics_from_stats",
    "initialize_model",
    "predictive",
    "print_summary",
    "select_samples",
    "summary",
]

Params = dict[str, torch.Tensor]
InitFn = Callable[[Any], torch.Tensor]

_MAX_TRIES = 100


def _latent_sites(trace: Trace, discrete: list[str] | None = None) -> dict[str, Any]:
    """The continuous latent sites; discrete ones (to be enumerated) go to ``discrete``."""
    latent = {}
    for name, site in trace.iter_stochastic_nodes():
        fn: Any = site["fn"]
        if site_is_subsample(site):
            if fn.subsample_size is not None and fn.subsample_size < fn.size:
                raise NotImplementedError("HMC/NUTS does not support model with subsample sites.")
            continue
        if getattr(fn, "has_enumerate_support", False):
            if discrete is None:
                raise NotImplementedError(f"HMC/NUTS: discrete latent site {name!r} ({type(fn).__name__}) cannot be sampled")
            discrete.append(name)
            continue
        latent[name] = site
    return latent


def _guess_max_plate_nesting(trace: Trace) -> int:
    dims = [
        frame.dim
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.vectorized and frame.dim is not None
    ]
    return -min(dims) if dims else 0


def model_transforms(
    model: Callable[..., Any], model_args: Sequence[Any], model_kwargs: Mapping[str, Any], transforms: Mapping[str, Transform] | None
) -> dict[str, Transform]:
    """Per latent site of ``model``, the given transform or ``biject_to(support).inv``."""
    with poutine.block():
        prototype = poutine.trace(model).get_trace(*model_args, **model_kwargs)
    chosen = dict(transforms or {})
    for name, site in _latent_sites(prototype).items():
        chosen.setdefault(name, biject_to(site["fn"].support).inv)
    return chosen


def _check_initial_params(initial_params: Mapping[str, torch.Tensor], shapes: Mapping[str, torch.Size], batch: int) -> None:
    unknown = sorted(set(initial_params) - set(shapes))
    if unknown:
        raise ValueError(f"initial_params has unknown sites {unknown}; the model's latent sites are {sorted(shapes)}")
    missing = sorted(set(shapes) - set(initial_params))
    if missing:
        raise ValueError(f"initial_params is missing the latent sites {missing}")
    for name, value in initial_params.items():
        expected = torch.Size((batch,) if batch > 1 else ()) + shapes[name]
        if torch.Size(value.shape) != expected:
            raise ValueError(
                f"initial_params[{name!r}] has shape {tuple(value.shape)}, expected {tuple(expected)} "
                "(unconstrained values, with a leading num_chains dim when num_chains > 1)"
            )
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"initial_params[{name!r}] is not finite: unconstrained values must be real numbers")


def _find_valid_initial_params(
    model: Callable[..., Any],
    model_args: Sequence[Any],
    model_kwargs: Mapping[str, Any],
    transforms: Mapping[str, Transform],
    potential_fn: Callable[[Params], torch.Tensor],
    names: Sequence[str],
    num_chains: int,
    init_strategy: InitFn,
    trace: Trace | None,
) -> Params:
    found: list[Params] = []
    init_model = InitMessenger(init_strategy)(model)
    for _ in range(num_chains * _MAX_TRIES):
        if trace is None:
            trace = poutine.trace(init_model).get_trace(*model_args, **model_kwargs)
        params = {name: transforms[name](trace.nodes[name]["value"].detach()) for name in names}
        grads, potential = potential_grad(potential_fn, params)
        if bool(torch.isfinite(potential)) and all(bool(torch.isfinite(g).all()) for g in grads.values()):
            found.append(params)
            if len(found) == num_chains:
                if num_chains == 1:
                    return found[0]
                return {name: torch.stack([p[name] for p in found]) for name in names}
        trace = None
    raise ValueError("Model specification seems incorrect - cannot find valid initial params.")


def initialize_model(
    model: Callable[..., Any],
    model_args: Sequence[Any] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    transforms: Mapping[str, Transform] | None = None,
    max_plate_nesting: int | None = None,
    jit_compile: bool = False,
    jit_options: Mapping[str, Any] | None = None,
    skip_jit_warnings: bool = False,
    num_chains: int = 1,
    init_strategy: InitFn = init_to_uniform,
    initial_params: Mapping[str, torch.Tensor] | None = None,
) -> tuple[Params, ModelPotential, dict[str, Transform], Trace]:
    """Prepare ``model`` for HMC/NUTS.

    :param model: the model; its discrete latent sites are enumerated in parallel and summed
        out of the potential, as in Pyro (``max_plate_nesting`` guessed if not given).
    :param model_args: the model's positional arguments.
    :param model_kwargs: its keyword arguments.
    :param transforms: per site, the transform from its support to unconstrained space
        (default: ``biject_to(support).inv`` for every latent site).
    :param max_plate_nesting: the number of plate dims, left of which enumeration dims go.
    :param jit_compile: kept on the potential; the kernels compile its graph with ``torch.compile``.
    :param jit_options: accepted for Pyro compatibility.
    :param skip_jit_warnings: accepted for Pyro compatibility.
    :param num_chains: how many initial points to find (stacked along a leading dim if > 1).
    :param init_strategy: an ``ember.infer.autoguide.initialization`` strategy.
    :param initial_params: unconstrained starting values, if known (no search then).
    :returns: ``(initial_params, potential_fn, transforms, prototype_trace)``.
    :raises ValueError: if no valid initial point is found in 100 tries per chain, or
        ``initial_params`` names unknown sites or has wrong shapes or non-finite values.
    :raises NotImplementedError: for subsampled plates.

    >>> import ember, ember.distributions as dist
    >>> def model():
    ...     ember.sample("s", dist.HalfNormal(1.0))
    >>> params, potential_fn, transforms, trace = initialize_model(model)
    >>> sorted(params), potential_fn({"s": torch.tensor(0.0)})
    (['s'], tensor(0.7258))
    """
    model_kwargs = {} if model_kwargs is None else dict(model_kwargs)
    discrete: list[str] = []
    with poutine.block():
        # A plain run first: discrete sites are enumerated (as in Pyro), not initialised.
        plain = poutine.trace(model).get_trace(*model_args, **model_kwargs)
        _latent_sites(plain, discrete)
        if discrete:
            if max_plate_nesting is None:
                max_plate_nesting = _guess_max_plate_nesting(plain)
            model = poutine.enum(config_enumerate(model), first_available_dim=-1 - max_plate_nesting)
        prototype = poutine.trace(InitMessenger(init_strategy)(model)).get_trace(*model_args, **model_kwargs)
    latent = _latent_sites(prototype, [])
    automatic = transforms is None
    chosen: dict[str, Transform] = {} if transforms is None else dict(transforms)
    for name, site in latent.items():
        if automatic or name not in chosen:
            chosen[name] = biject_to(site["fn"].support).inv
    potential_fn = ModelPotential(model, model_args, model_kwargs, chosen, enumerated=bool(discrete))
    potential_fn.jit_compile = jit_compile
    shapes = {name: torch.Size(chosen[name](site["value"].detach()).shape) for name, site in latent.items()}
    potential_fn.layout = Layout(shapes)
    if initial_params is not None:
        _check_initial_params(initial_params, shapes, num_chains)
        params = {name: value.detach() for name, value in initial_params.items()}
    elif not latent:
        params = {}
    else:
        with poutine.block():
            params = _find_valid_initial_params(
                model, model_args, model_kwargs, chosen, potential_fn, sorted(latent), num_chains, init_strategy, prototype
            )
    return params, potential_fn, chosen, prototype


def flat_potential(
    potential_fn: Callable[[Params], torch.Tensor],
    layout: Layout,
    num_chains: int,
    example: torch.Tensor,
    compiled: bool = True,
    dense: bool = False,
    extension: StepExtension | None = None,
) -> FlatPotential:
    """The flat evaluator the kernels use: compiled when ``potential_fn`` comes from a model."""
    jit_compile = bool(getattr(potential_fn, "jit_compile", False))
    with poutine.block():
        return FlatPotential(
            potential_fn, layout, num_chains, compile_graph=compiled, jit_compile=jit_compile, example=example,
            dense=dense, extension=extension,
        )


def select_samples(
    samples: Mapping[str, torch.Tensor], num_samples: int | None = None, group_by_chain: bool = False
) -> dict[str, torch.Tensor]:
    """Samples shaped ``(num_chains, num_samples, ...)`` (``group_by_chain``) or flattened over
    chains, optionally ``num_samples`` of them drawn with replacement.

    :raises ValueError: when asked to draw from empty samples.

    >>> s = {"x": torch.arange(6.0).reshape(2, 3)}
    >>> select_samples(s)["x"]
    tensor([0., 1., 2., 3., 4., 5.])
    """
    if num_samples is None:
        if group_by_chain:
            return dict(samples)
        return {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items()}
    if not samples:
        raise ValueError("No samples found from MCMC run.")
    if group_by_chain:
        batch_dim = 1
        chosen = dict(samples)
    else:
        batch_dim = 0
        chosen = {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items()}
    first = next(iter(chosen.values()))
    idx = torch.randint(0, first.shape[batch_dim], (num_samples,), device=first.device)
    return {k: v.index_select(batch_dim, idx) for k, v in chosen.items()}


def _safe(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    @functools.wraps(fn)
    def wrapped(sample: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        try:
            return fn(sample, *args, **kwargs)
        except Exception:
            warn_at_caller(traceback.format_exc())
            return torch.full(sample.shape[2:], math.nan, dtype=sample.dtype, device=sample.device)

    return wrapped


def diagnostics(samples: Mapping[str, torch.Tensor], group_by_chain: bool = True) -> dict[str, dict[str, torch.Tensor]]:
    """Per site, the effective sample size ``n_eff`` and split Gelman-Rubin ``r_hat``.

    :param samples: per site, ``(num_chains, num_samples, ...)`` (or without the chain dim if
        ``group_by_chain`` is false).
    """
    result: dict[str, dict[str, torch.Tensor]] = {}
    for name, value in samples.items():
        support = value if group_by_chain else value.unsqueeze(0)
        result[name] = {
            "n_eff": _safe(stats.effective_sample_size)(support),
            "r_hat": stats.split_gelman_rubin(support),
        }
    return result


def diagnostics_from_stats(
    statistics: Mapping[Any, Mapping[str, torch.Tensor]], num_samples: int, num_chains: int
) -> dict[str, dict[str, torch.Tensor]]:
    """Split-free Gelman-Rubin ``r_hat`` per site from streamed per-chain means and variances."""
    grouped: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for (_, name), stat in statistics.items():
        if "mean" in stat and "variance" in stat:
            means, variances = grouped.setdefault(name, ([], []))
            means.append(stat["mean"])
            variances.append(stat["variance"])
    result = {}
    for name, (means, variances) in grouped.items():
        m, v = torch.stack(means), torch.stack(variances)
        var_within = v.mean(dim=0)
        estimator = (num_samples - 1) / num_samples * var_within
        if num_chains > 1:
            estimator = estimator + m.var(dim=0)
        else:
            var_within = estimator
        result[name] = {"r_hat": (estimator / var_within).sqrt()}
    return result


def summary(
    samples: Mapping[str, torch.Tensor], prob: float = 0.9, group_by_chain: bool = True
) -> dict[str, dict[str, torch.Tensor]]:
    """Per site: mean, std, median, the ``prob`` HPD interval, ``n_eff`` and ``r_hat``.

    :param samples: per site, ``(num_chains, num_samples, ...)`` (or no chain dim if
        ``group_by_chain`` is false).
    :param prob: the mass of the highest posterior density interval.
    """
    if not group_by_chain:
        samples = {k: v.unsqueeze(0) for k, v in samples.items()}
    lower, upper = f"{50 * (1 - prob):.1f}%", f"{50 * (1 + prob):.1f}%"
    table = {}
    for name, value in samples.items():
        flat = value.reshape((-1,) + value.shape[2:])
        interval = stats.hpdi(flat, prob=prob)
        table[name] = {
            "mean": flat.mean(dim=0),
            "std": flat.std(dim=0),
            "median": flat.median(dim=0)[0],
            lower: interval[0],
            upper: interval[1],
            "n_eff": _safe(stats.effective_sample_size)(value),
            "r_hat": stats.split_gelman_rubin(value),
        }
    return table


def print_summary(samples: Mapping[str, torch.Tensor], prob: float = 0.9, group_by_chain: bool = True) -> None:
    """Print :func:`summary` as Pyro's table (one row per scalar component)."""
    if not samples:
        return
    table = summary(samples, prob, group_by_chain)
    dims = 2 if group_by_chain else 1
    labels = [k + "[" + ",".join(str(s - 1) for s in v.shape[dims:]) + "]" for k, v in samples.items()]
    width = max(max(len(label) for label in labels), 10)
    columns = ["", *next(iter(table.values())).keys()]
    print()
    print(f"{columns[0]:>{width}}" + "".join(f" {c:>9}" for c in columns[1:]))
    for name, row in table.items():
        shape = row["mean"].shape
        for idx in product(*map(range, shape)):
            label = name + (f"[{','.join(map(str, idx))}]" if shape else "")
            values = "".join(f" {float(v[idx]):>9.2f}" for v in row.values())
            print(f"{label:>{width}}{values}")
    print()


def predictive(model: Callable[..., Any], posterior_samples: Mapping[str, torch.Tensor], *args: Any, **kwargs: Any) -> Any:
    """Deprecated, as in Pyro: use :class:`ember.infer.Predictive`.

    Keyword arguments ``num_samples``, ``return_sites``, ``return_trace`` and ``parallel`` are
    read as Pyro does; the rest go to the model.
    """
    from ember.infer.predictive import Predictive

    warn_at_caller(
        "The `mcmc.predictive` function is deprecated and will be removed in "
        "a future release. Use the `pyro.infer.Predictive` class instead.",
        FutureWarning,
    )
    num_samples = kwargs.pop("num_samples", None)
    return_sites = kwargs.pop("return_sites", None)
    return_trace = kwargs.pop("return_trace", False)
    parallel = kwargs.pop("parallel", False)
    if posterior_samples:
        batch = next(iter(posterior_samples.values())).shape[0]
        if num_samples is not None and num_samples != batch:
            warn_at_caller(
                f"Sample's leading dimension size {batch} is different from the provided {num_samples} "
                f"num_samples argument. Defaulting to {batch}.",
                UserWarning,
            )
        num_samples = batch
    runner = Predictive(
        model, posterior_samples=dict(posterior_samples), num_samples=num_samples, return_sites=return_sites or (), parallel=parallel
    )
    if return_trace:
        return runner.get_vectorized_trace(*args, **kwargs)
    return runner(*args, **kwargs)
