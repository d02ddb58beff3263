"""Posteriors held as weighted bags of execution traces, their empirical marginals, and
the deprecated :class:`TracePredictive`.

A :class:`TracePosterior` (``Importance``, ``SVI``) collects ``(trace, log_weight)`` pairs from
its ``_traces`` generator when :meth:`~TracePosterior.run` is called. An
:class:`EmpiricalMarginal` turns the values one site took across those traces into a
distribution: a categorical over the collected values, weighted by the log weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from typing import Any, Self, TypeAlias

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions import Categorical
from ember.distributions.torch_distribution import TorchDistribution
from ember.poutine.handlers import block, replay, trace
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample
from ember._util import warn_at_caller

__all__ = ["EmpiricalMarginal", "Marginals", "TracePosterior", "TracePredictive"]

Weight: TypeAlias = torch.Tensor | float
WeightedTrace: TypeAlias = tuple[Trace, Weight] | tuple[Trace, Weight, int]
Sites: TypeAlias = str | list[str]

_EMPTY = torch.Size()


def _weighted_mean(value: torch.Tensor, log_weights: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """The mean of ``value`` along ``dim`` under (unnormalized) ``log_weights`` on that dim."""
    weights = log_weights.reshape(log_weights.shape + (1,) * (value.dim() - log_weights.dim()))
    relative = (weights - weights.max(dim=dim, keepdim=True)[0]).exp()
    return (value * relative).sum(dim=dim, keepdim=keepdim) / relative.sum(dim=dim, keepdim=keepdim)


_DISCRETE_MOMENT = (
    "{} for discrete empirical distribution undefined. Consider converting samples to "
    "``torch.float32`` or ``torch.float64``. If these are samples from a `Categorical` "
    "distribution, consider converting to a `OneHotCategorical` distribution."
)


class EmpiricalMarginal(TorchDistribution):
    """The marginal of one site (or several sites of one shape) over a run posterior.

    The values are stacked along a new leftmost dim (after a chain dim when the posterior
    has several chains), weighted by the traces' log weights; several sites are stacked
    along one more dim, so their values must share a shape.

    :param trace_posterior: a :class:`TracePosterior` that has been :meth:`~TracePosterior.run`.
    :param sites: a site name or a list of names (default ``"_RETURN"``).
    :param validate_args: as for torch distributions.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.infer import Importance
    >>> def model():
    ...     return ember.sample("x", dist.Normal(0.0, 1.0))
    >>> posterior = Importance(model, num_samples=4).run()
    >>> marginal = EmpiricalMarginal(posterior, sites="x")
    >>> marginal.sample_size, marginal.event_shape, marginal.sample().shape
    (4, torch.Size([]), torch.Size([]))
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real
    has_enumerate_support = True

    def __init__(self, trace_posterior: TracePosterior, sites: Sites | None = None, validate_args: bool | None = None):
        # AssertionError is the type Pyro raises for these misuses.
        if not isinstance(trace_posterior, TracePosterior):
            raise AssertionError("trace_dist must be trace posterior distribution object")
        if sites is None:
            sites = "_RETURN"
        if not isinstance(sites, (list, str)):
            raise AssertionError(f"sites must be a site name or a list of names, got {sites!r}")
        self._num_chains = 1
        self._samples_buffer: defaultdict[int, list[torch.Tensor]] = defaultdict(list)
        self._weights_buffer: defaultdict[int, list[Weight]] = defaultdict(list)
        self._populate_traces(trace_posterior, sites)
        samples, log_weights = self._get_samples_and_weights()
        self._samples = samples
        self._log_weights = log_weights
        if log_weights.shape != samples.shape[: log_weights.dim()]:
            raise ValueError(
                f"The shape of ``log_weights`` ({log_weights.shape}) must match "
                f"the leftmost shape of ``samples`` ({samples.shape})"
            )
        self._aggregation_dim = log_weights.dim() - 1
        self._categorical = Categorical(logits=log_weights)
        super().__init__(
            batch_shape=log_weights.shape[:-1],
            event_shape=samples.shape[log_weights.dim() :],
            validate_args=validate_args,
        )

    def _add_sample(self, value: torch.Tensor, log_weight: Weight | None = None, chain_id: int = 0) -> None:
        if log_weight is None:
            log_weight = 0.0
        # Read before ``__init__`` sets it, so this is torch's global default, as in Pyro.
        if self._validate_args and isinstance(log_weight, torch.Tensor) and log_weight.dim() > 0:
            raise ValueError("``weight.dim() > 0``, but weight should be a scalar.")
        self._samples_buffer[chain_id].append(value)
        self._weights_buffer[chain_id].append(log_weight)
        self._num_chains = max(self._num_chains, chain_id + 1)

    def _populate_traces(self, trace_posterior: TracePosterior, sites: Sites) -> None:
        for tr, log_weight, chain_id in zip(
            trace_posterior.exec_traces, trace_posterior.log_weights, trace_posterior.chain_ids
        ):
            if isinstance(sites, str):
                value = tr.nodes[sites]["value"]
            else:
                value = torch.stack([tr.nodes[site]["value"] for site in sites], 0)
            self._add_sample(value, log_weight=log_weight, chain_id=chain_id)

    def _get_samples_and_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        samples_by_chain = []
        weights_by_chain = []
        for chain in range(len(self._samples_buffer)):
            samples = torch.stack(self._samples_buffer[chain], dim=0)
            dtype = samples.dtype if samples.dtype.is_floating_point else torch.float32
            weights = torch.as_tensor(self._weights_buffer[chain], device=samples.device, dtype=dtype)
            samples_by_chain.append(samples)
            weights_by_chain.append(weights)
        if len(samples_by_chain) == 1:
            return samples_by_chain[0], weights_by_chain[0]
        return torch.stack(samples_by_chain, dim=0), torch.stack(weights_by_chain, dim=0)

    @property
    def sample_size(self) -> int:
        """How many samples make up the distribution."""
        return self._log_weights.numel()

    @property
    def log_weights(self) -> torch.Tensor:
        """The unnormalized log weight of each sample."""
        return self._log_weights

    def sample(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Draw collected values with probability proportional to their weights."""
        index = self._categorical.sample(torch.Size(sample_shape))
        # Bring the sample dim to the front: (samples, *batch, *event).
        samples = self._samples.movedim(self._aggregation_dim, 0)
        index = index.reshape((-1,) + self.batch_shape + (1,) * len(self.event_shape))
        index = index.expand((-1,) + samples.shape[1:])
        return samples.gather(0, index).reshape(torch.Size(sample_shape) + samples.shape[1:])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log of the total normalized weight of the samples equal to ``value``.

        Only a single value (shape ``batch_shape + event_shape``) can be scored.
        """
        if self._validate_args and value.shape != self.batch_shape + self.event_shape:
            raise ValueError(f"``value.shape`` must be {self.batch_shape + self.event_shape}")
        if self.batch_shape:
            value = value.unsqueeze(self._aggregation_dim)
        matches = self._samples.eq(value)
        for _ in range(len(self.event_shape)):
            matches = matches.min(dim=-1)[0]
        probs: torch.Tensor = self._categorical.probs
        return (probs * matches.to(probs.dtype)).sum(dim=-1).log()

    @property
    def mean(self) -> torch.Tensor:
        """The weighted mean of the samples (floating point samples only)."""
        if self._samples.dtype in (torch.int32, torch.int64):
            raise ValueError(_DISCRETE_MOMENT.format("Mean"))
        return _weighted_mean(self._samples, self._log_weights, self._aggregation_dim)

    @property
    def variance(self) -> torch.Tensor:
        """The weighted (biased) variance of the samples (floating point samples only)."""
        if self._samples.dtype in (torch.int32, torch.int64):
            raise ValueError(_DISCRETE_MOMENT.format("Variance"))
        deviation = self._samples - self.mean.unsqueeze(self._aggregation_dim)
        return _weighted_mean(deviation.pow(2), self._log_weights, self._aggregation_dim)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The collected samples themselves (``expand`` has no effect)."""
        return self._samples


class Marginals:
    """The :class:`EmpiricalMarginal` of each of several sites, which may differ in shape.

    :param trace_posterior: a run :class:`TracePosterior`.
    :param sites: a site name or a list of names (default ``["_RETURN"]``).
    :param validate_args: passed to each :class:`EmpiricalMarginal`.
    """

    def __init__(self, trace_posterior: TracePosterior, sites: Sites | None = None, validate_args: bool | None = None):
        if not isinstance(trace_posterior, TracePosterior):
            raise AssertionError("trace_dist must be trace posterior distribution object")
        if sites is None:
            sites = ["_RETURN"]
        elif isinstance(sites, str):
            sites = [sites]
        elif not isinstance(sites, list):
            raise AssertionError(f"sites must be a site name or a list of names, got {sites!r}")
        self.sites = sites
        self._trace_posterior = trace_posterior
        self._marginals: dict[str, EmpiricalMarginal] = {
            site: EmpiricalMarginal(trace_posterior, site, validate_args) for site in sites
        }

    def support(self, flatten: bool = False) -> OrderedDict[str, torch.Tensor]:
        """The collected values of each site.

        :param flatten: merge the chain dim into the sample dim when there are several chains.
        """
        support = OrderedDict((site, marginal.enumerate_support()) for site, marginal in self._marginals.items())
        if flatten and self._trace_posterior.num_chains > 1:
            for site, samples in support.items():
                support[site] = samples.reshape((-1,) + samples.shape[2:])
        return support

    @property
    def empirical(self) -> dict[str, EmpiricalMarginal]:
        """The :class:`EmpiricalMarginal` of each site, by name."""
        return self._marginals


class TracePosterior(ABC):
    """Base class of inference algorithms whose posterior is a weighted bag of traces.

    Subclasses implement :meth:`_traces`; :meth:`run` collects what it yields, and calling
    the posterior draws one of the traces (observed sites removed) by weight.

    :param num_chains: how many chains :meth:`_traces` labels its traces with.
    """

    def __init__(self, num_chains: int = 1) -> None:
        self.num_chains = num_chains
        self._reset()

    def _reset(self) -> None:
        self.log_weights: list[torch.Tensor] = []
        self.exec_traces: list[Trace] = []
        self.chain_ids: list[int] = []
        self._idx_by_chain: list[list[int]] = [[] for _ in range(self.num_chains)]
        self._categorical: Categorical | None = None

    def marginal(self, sites: Sites | None = None) -> Marginals:
        """The :class:`Marginals` of ``sites`` (default ``"_RETURN"``)."""
        return Marginals(self, sites)

    @abstractmethod
    def _traces(self, *args: Any, **kwargs: Any) -> Iterator[WeightedTrace]:
        """Yield ``(trace, log_weight)`` or ``(trace, log_weight, chain_id)``."""
        raise NotImplementedError("Inference algorithm must implement ``_traces``.")

    def __call__(self, *args: Any, **kwargs: Any) -> Trace:
        """Draw one collected trace by weight, without its observed sites."""
        if self._categorical is None:
            raise AttributeError(f"{type(self).__name__} has no traces to draw from; call .run(...) first")
        # Index by chain so that draws are reproducible with several chains.
        index = int(self._categorical.sample().item())
        chain, position = index % self.num_chains, index // self.num_chains
        tr = self.exec_traces[self._idx_by_chain[chain][position]].copy()
        for name in tr.observation_nodes:
            tr.remove_node(name)
        return tr

    def run(self, *args: Any, **kwargs: Any) -> Self:
        """Collect the traces of :meth:`_traces` (run under ``block()``); returns ``self``."""
        self._reset()
        with block():
            for i, item in enumerate(self._traces(*args, **kwargs)):
                if len(item) == 2:
                    tr, log_weight = item
                    chain = 0
                else:
                    tr, log_weight, chain = item
                    if chain >= self.num_chains:
                        raise AssertionError(f"chain id {chain} is not below num_chains={self.num_chains}")
                self.exec_traces.append(tr)
                self.log_weights.append(torch.as_tensor(log_weight).detach())
                self.chain_ids.append(chain)
                self._idx_by_chain[chain].append(i)
        self._categorical = Categorical(logits=torch.stack(self.log_weights))
        return self

    def information_criterion(self, pointwise: bool = False) -> OrderedDict[str, torch.Tensor]:
        """WAIC and its effective number of parameters ``p_waic``, from the observed site.

        :param pointwise: return per-datum values instead of their sums.
        :raises ValueError: unless every trace has the same single observed site.
        """
        if not self.exec_traces:
            return OrderedDict()
        obs_name: str | None = None
        log_likelihoods = []
        for tr in self.exec_traces:
            names = tr.observation_nodes
            if len(names) != 1:
                raise ValueError(
                    "Infomation criterion calculation only works for models with one observation node."
                )
            if obs_name is None:
                obs_name = names[0]
            elif obs_name != names[0]:
                raise ValueError(f"Observation node has been changed, expected {obs_name} but got {names[0]}")
            site = tr.nodes[obs_name]
            fn: Any = site["fn"]
            log_likelihoods.append(fn.log_prob(site["value"]))
        ll = torch.stack(log_likelihoods, dim=0)
        waic, p_waic = _waic(ll, torch.tensor(self.log_weights, device=ll.device), pointwise)
        return OrderedDict([("waic", waic), ("p_waic", p_waic)])


def _waic(log_likelihood: torch.Tensor, log_weights: torch.Tensor, pointwise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """WAIC = -2 (lpd - p_waic) over draws along dim 0 (Vehtari, Gelman and Gabry, 2017)."""
    weights = log_weights.reshape((-1,) + (1,) * (log_likelihood.dim() - 1))
    lpd = torch.logsumexp(log_likelihood + weights, dim=0) - torch.logsumexp(log_weights, dim=0)
    # The frequency-weighted, unbiased variance of the log likelihood over draws.
    relative = (weights - weights.max(dim=0)[0]).exp()
    mean = (log_likelihood * relative).sum(0, keepdim=True) / relative.sum()
    n = log_weights.size(0)
    p_waic = ((log_likelihood - mean).pow(2) * relative).sum(0) / relative.sum() * (n / (n - 1.0))
    waic = -2 * (lpd - p_waic)
    if pointwise:
        return waic, p_waic
    return waic.sum(), p_waic.sum()



class TracePredictive(TracePosterior):
    """Deprecated: posterior predictive traces from a :class:`TracePosterior`; use ``Predictive``.

    Each of ``num_samples`` traces replays the model on a trace drawn from ``posterior``
    (run first if it has no traces), keeping only ``keep_sites`` if given. Sites in plates
    are resized to the plate sizes of the current arguments by drawing indices at random.

    :param model: the model.
    :param posterior: a :class:`TracePosterior` over the model's latents.
    :param num_samples: how many predictive traces to generate.
    :param keep_sites: the site names to take from the posterior (default all).
    """

    def __init__(self, model: Any, posterior: TracePosterior, num_samples: int, keep_sites: list[str] | None = None) -> None:
        self.model = model
        self.posterior = posterior
        self.num_samples = num_samples
        self.keep_sites = keep_sites
        super().__init__()
        warn_at_caller(
            "The `TracePredictive` class is deprecated and will be removed in a future release. "
            "Use the `pyro.infer.Predictive` class instead.",
            FutureWarning,
        )

    def _traces(self, *args: Any, **kwargs: Any) -> Iterator[WeightedTrace]:
        if not self.posterior.exec_traces:
            self.posterior.run(*args, **kwargs)
        data_trace = trace(self.model).get_trace(*args, **kwargs)
        for _ in range(self.num_samples):
            model_trace = self.posterior().copy()
            self._remove_dropped_nodes(model_trace)
            self._adjust_to_data(model_trace, data_trace)
            yield trace(replay(self.model, trace=model_trace)).get_trace(*args, **kwargs), 0.0, 0

    def _remove_dropped_nodes(self, tr: Trace) -> None:
        if self.keep_sites is None:
            return
        for name in list(tr.nodes):
            if name not in self.keep_sites:
                tr.remove_node(name)

    def _adjust_to_data(self, tr: Trace, data_trace: Trace) -> None:
        """Give each site the plates of ``data_trace``, resampling plate dims to their new sizes."""
        indices: dict[str, torch.Tensor] = {}
        for name, site in tr.iter_stochastic_nodes():
            data_site = data_trace.nodes[name]
            if site_is_subsample(site):
                site["fn"] = data_site["fn"]
                site["value"] = data_site["value"]
            old_stack = site["cond_indep_stack"]
            site["cond_indep_stack"] = data_site["cond_indep_stack"]
            assert len(old_stack) == len(site["cond_indep_stack"])
            site["fn"] = data_site["fn"]
            fn: Any = site["fn"]
            for old, new in zip(old_stack, site["cond_indep_stack"]):
                assert old.name == new.name and not site_is_subsample(site) and new.dim is not None
                index = indices.setdefault(
                    new.name, torch.randint(0, int(old.size), (int(new.size),), device=site["value"].device)
                )
                site["value"] = site["value"].index_select(new.dim - fn.event_dim, index)

    def marginal(self, sites: Sites | None = None) -> Marginals:
        """The :class:`Marginals` of the predictive traces."""
        return Marginals(self, sites)
