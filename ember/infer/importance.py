"""Importance sampling: a posterior of model traces weighted by ``p(model) / q(guide)``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch

from ember.infer.abstract_infer import TracePosterior, WeightedTrace
from ember.infer.enum import get_importance_trace
from ember.ops.stats import fit_generalized_pareto
from ember.poutine.handlers import block, replay, trace
from ember.poutine.trace_struct import Trace
from ember.primitives import plate

__all__ = ["Importance", "LogWeightsMixin", "psis_diagnostic", "vectorized_importance_weights"]


class _HasLogWeights(Protocol):
    @property
    def log_weights(self) -> Sequence[torch.Tensor | float] | torch.Tensor: ...


def _as_tensor(log_weights: Sequence[torch.Tensor | float] | torch.Tensor) -> torch.Tensor:
    return log_weights if isinstance(log_weights, torch.Tensor) else torch.tensor(log_weights)


class LogWeightsMixin:
    """Summaries of the ``log_weights`` attribute (a list of scalars or a tensor) of the
    class it is mixed into."""

    def get_log_normalizer(self: _HasLogWeights) -> torch.Tensor | None:
        """The log of the mean unnormalized weight: an estimate of the log evidence.

        Warns and returns ``None`` when there are no weights.
        """
        if len(self.log_weights) == 0:
            warnings.warn("The log_weights list is empty, can not compute normalizing constant estimate.")
            return None
        log_w = _as_tensor(self.log_weights)
        return torch.logsumexp(log_w - math.log(log_w.numel()), 0)

    def get_normalized_weights(self: _HasLogWeights, log_scale: bool = False) -> torch.Tensor | None:
        """The weights normalized to sum to one (their logs if ``log_scale``).

        Warns and returns ``None`` when there are no weights.
        """
        if len(self.log_weights) == 0:
            warnings.warn("The log_weights list is empty. There is nothing to normalize.")
            return None
        log_w = _as_tensor(self.log_weights)
        log_w_norm = log_w - torch.logsumexp(log_w, 0)
        return log_w_norm if log_scale else torch.exp(log_w_norm)

    def get_ESS(self: _HasLogWeights) -> torch.Tensor | int:
        """The effective sample size ``1 / sum(w_i ** 2)`` of the normalized weights."""
        if len(self.log_weights) == 0:
            warnings.warn("The log_weights list is empty, effective sample size is zero.")
            return 0
        log_w = _as_tensor(self.log_weights)
        log_w_norm = log_w - torch.logsumexp(log_w, 0)
        return torch.exp(-torch.logsumexp(2 * log_w_norm, 0))


class Importance(TracePosterior, LogWeightsMixin):
    """Importance sampling with the guide as proposal.

    Each of ``num_samples`` runs draws the guide, replays the model against it, and weighs
    the model trace by ``model_trace.log_prob_sum() - guide_trace.log_prob_sum()``.

    :param model: the model.
    :param guide: the proposal; by default the model itself with its observed sites hidden,
        i.e. the prior.
    :param num_samples: how many weighted traces :meth:`run` collects (default 10, with a
        warning).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model(y):
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    ...     ember.sample("y", dist.Normal(x, 1.0), obs=y)
    >>> posterior = Importance(model, num_samples=3).run(torch.tensor(0.5))
    >>> len(posterior.exec_traces), round(float(posterior.get_normalized_weights().sum()), 4)
    (3, 1.0)
    """

    def __init__(
        self, model: Callable[..., Any], guide: Callable[..., Any] | None = None, num_samples: int | None = None
    ) -> None:
        super().__init__()
        if num_samples is None:
            num_samples = 10
            warnings.warn(f"num_samples not provided, defaulting to {num_samples}")
        if guide is None:
            guide = block(model, hide_types=["observe"])
        self.num_samples = num_samples
        self.model = model
        self.guide = guide

    def _traces(self, *args: Any, **kwargs: Any) -> Iterator[WeightedTrace]:
        for _ in range(self.num_samples):
            guide_trace = trace(self.guide).get_trace(*args, **kwargs)
            model_trace = trace(replay(self.model, trace=guide_trace)).get_trace(*args, **kwargs)
            yield model_trace, model_trace.log_prob_sum() - guide_trace.log_prob_sum()


def _log_prob_sum_over(tr: Trace, symbol: str) -> torch.Tensor | float:
    """Sum each site's packed ``log_prob`` over every dim except the plate named by ``symbol``."""
    total: torch.Tensor | float = 0.0
    for site in tr.nodes.values():
        if site["type"] == "sample":
            log_prob = site["packed"]["log_prob"]
            total = total + torch.einsum(f"{log_prob._pyro_dims}->{symbol}", log_prob)
    return total


def vectorized_importance_weights(
    model: Callable[..., Any], guide: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[torch.Tensor | float, Trace, Trace]:
    """Importance weights of ``num_samples`` guide draws at once, in a vectorizing plate.

    The model and guide run once inside ``plate("num_particles_vectorized", num_samples)``
    placed left of their own plates, so both must be vectorized and static.

    :param args: passed to the model and guide, with their keyword arguments except:
    :param num_samples: how many draws (keyword only; default 1).
    :param max_plate_nesting: the number of plates the model nests (keyword only; required).
    :param normalized: return self-normalized log weights (keyword only; default false).
    :returns: ``(log_weights, model_trace, guide_trace)``; the log weights have shape
        ``(num_samples,)`` (a scalar when ``num_samples == 1``).
    :raises ValueError: without ``max_plate_nesting``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    ...     ember.sample("y", dist.Normal(x, 1.0), obs=torch.tensor(0.5))
    >>> guide = ember.poutine.block(model, hide_types=["observe"])
    >>> log_w, _, _ = vectorized_importance_weights(model, guide, num_samples=5, max_plate_nesting=0)
    >>> log_w.shape
    torch.Size([5])
    """
    num_samples: int = kwargs.pop("num_samples", 1)
    max_plate_nesting: int | None = kwargs.pop("max_plate_nesting", None)
    normalized: bool = kwargs.pop("normalized", False)
    if max_plate_nesting is None:
        raise ValueError("must provide max_plate_nesting")
    max_plate_nesting += 1

    def vectorize(fn: Callable[..., Any]) -> Callable[..., Any]:
        def vectorized(*args: Any, **kwargs: Any) -> Any:
            with plate("num_particles_vectorized", num_samples, dim=-max_plate_nesting):
                return fn(*args, **kwargs)

        return vectorized

    model_trace, guide_trace = get_importance_trace(
        "flat", max_plate_nesting, vectorize(model), vectorize(guide), args, kwargs
    )
    guide_trace.pack_tensors()
    model_trace.pack_tensors(guide_trace.plate_to_symbol)
    log_weights: torch.Tensor | float
    if num_samples == 1:
        log_weights = model_trace.log_prob_sum() - guide_trace.log_prob_sum()
    else:
        symbol = guide_trace.plate_to_symbol["num_particles_vectorized"]
        log_weights = _log_prob_sum_over(model_trace, symbol) - _log_prob_sum_over(guide_trace, symbol)
    if normalized:
        log_weights = log_weights - torch.logsumexp(torch.as_tensor(log_weights), dim=0)
    return log_weights, model_trace, guide_trace


@torch.no_grad()
def psis_diagnostic(model: Callable[..., Any], guide: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """The Pareto tail index ``k`` of the importance weights ``p(model) / q(guide)``: how well
    the guide approximates the posterior (Yao, Vehtari, Simpson & Gelman, 2018).

    ``k < 0.5``: a good approximation; ``0.5 <= k <= 0.7``: usable but suboptimal;
    ``k > 0.7``: poor. A generalized Pareto distribution is fitted (with
    :func:`~ember.ops.stats.fit_generalized_pareto`) to the largest
    ``ceil(min(0.2 N, 3 sqrt(N)))`` weights above the cut-off. The model and guide must be
    vectorized and static, as for :func:`vectorized_importance_weights`.

    :param args: passed to the model and guide, with their keyword arguments except:
    :param num_particles: how many weights to draw (keyword only; default 1000).
    :param max_simultaneous_particles: how many to draw at once (keyword only; by default all;
        it must divide ``num_particles``).
    :param max_plate_nesting: the number of plates the model nests (keyword only; default 7).
    :returns: ``k``, or ``inf`` (with a warning) when fewer than 10 weights lie in the tail.
    :raises ValueError: if ``max_simultaneous_particles`` does not divide ``num_particles``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     ember.sample("x", dist.Normal(0.0, 1.0))
    >>> def guide():  # wider than the posterior, so the weights are bounded
    ...     ember.sample("x", dist.Normal(0.0, 1.5))
    >>> psis_diagnostic(model, guide, num_particles=500) < 0.5
    True
    """
    num_particles: int = kwargs.pop("num_particles", 1000)
    max_simultaneous_particles: int = kwargs.pop("max_simultaneous_particles", num_particles)
    max_plate_nesting: int = kwargs.pop("max_plate_nesting", 7)
    if num_particles % max_simultaneous_particles != 0:
        raise ValueError("num_particles must be divisible by max_simultaneous_particles.")
    batches = [
        torch.as_tensor(
            vectorized_importance_weights(
                model,
                guide,
                *args,
                num_samples=max_simultaneous_particles,
                max_plate_nesting=max_plate_nesting,
                **kwargs,
            )[0]
        ).reshape(-1)
        for _ in range(num_particles // max_simultaneous_particles)
    ]
    log_weights = torch.cat(batches)
    log_weights = (log_weights - log_weights.max()).sort().values
    tail_size = int(math.ceil(min(0.2 * num_particles, 3.0 * math.sqrt(num_particles))))
    log_cutoff = max(math.log(1.0e-15), float(log_weights[-tail_size - 1]))
    tail = log_weights[log_weights > log_cutoff]
    if len(tail) < 10:
        warnings.warn("Not enough tail samples to compute PSIS diagnostic; increase num_particles.")
        return float("inf")
    k, _ = fit_generalized_pareto(tail.exp() - math.exp(log_cutoff))
    return k
