"""Sequential Monte Carlo filtering: sequential importance resampling over a model's time steps.

The model and guide are objects with ``init(state, ...)`` and ``step(state, ...)`` methods.
Every particle runs at once, in a ``"particles"`` plate left of the model's plates; the
guide proposes each step's latents, the model scores them and its observations, and the
particles are resampled (systematically) when the effective sample size drops below
``ess_threshold * num_particles``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Hashable, Iterator
from typing import Any

import torch

import ember.distributions as dist
from ember.infer.util import is_validation_enabled
from ember.poutine.handlers import block, replay, trace
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites
from ember.primitives import plate

__all__ = ["SMCFailed", "SMCFilter", "SMCState"]


class SMCFailed(ValueError):
    """:class:`SMCFilter` found no particle with nonzero probability."""


class SMCState(dict[Hashable, torch.Tensor]):
    """The state of every particle: tensors whose leading dim is the particle dim.

    The model reads and writes it; the guide may only read it (writing raises
    ``RuntimeError``). Resampling reindexes every value along the particle dim.

    :param num_particles: the number of particles, a positive int.
    :raises AssertionError: if ``num_particles`` is not a positive int (Pyro's type).

    >>> state = SMCState(3)
    >>> state["x"] = torch.zeros(3, 2)
    >>> state["x"].shape, state._log_weights
    (torch.Size([3, 2]), tensor([0., 0., 0.]))
    """

    def __init__(self, num_particles: int) -> None:
        if not (isinstance(num_particles, int) and num_particles > 0):
            raise AssertionError(f"num_particles must be a positive int, got {num_particles!r}")
        super().__init__()
        self._num_particles = num_particles
        self._log_weights = torch.zeros(num_particles)
        self._locked = False

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self._locked = True
        try:
            yield
        finally:
            self._locked = False

    def __setitem__(self, key: Hashable, value: torch.Tensor) -> None:
        if self._locked:
            raise RuntimeError("Guide cannot write to SMCState")
        if is_validation_enabled():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"Only Tensors can be stored in an SMCState, but got {type(value).__name__}")
            if value.dim() == 0 or value.size(0) != self._num_particles:
                raise ValueError(f"Expected leading dim of size {self._num_particles} but got shape {value.shape}")
        super().__setitem__(key, value)

    def _resample(self, index: torch.Tensor) -> None:
        for key, value in list(self.items()):
            self[key] = value[index].contiguous()
        self._log_weights.fill_(0.0)


def _systematic_sample(probs: torch.Tensor) -> torch.Tensor:
    """Systematic resampling: ``N`` ancestor indices from one uniform draw, in order."""
    batch_shape, size = probs.shape[:-1], probs.size(-1)
    positions = probs.cumsum(-1).mul_(size).add_(torch.rand(batch_shape + (1,)))
    positions = positions.floor_().clamp_(min=0, max=size).long()
    counts = probs.new_zeros(batch_shape + (size + 1,))
    counts.scatter_add_(-1, positions, torch.ones_like(probs))
    return counts[..., :-1].cumsum(-1).long()


class SMCFilter:
    """Filtering by sequential importance resampling.

    ``model.init(state, *args)`` and ``model.step(state, *args)`` sample the latents of a
    time step (and observe its data), storing in ``state`` (an :class:`SMCState`) whatever later
    steps need; ``guide.init``/``guide.step`` propose the same latents, reading ``state``.
    Cost is ``O(len(state))`` per step, so keep the state a fixed size.

    :param model: an object with ``init`` and ``step`` methods.
    :param guide: the proposal, with the same methods.
    :param num_particles: the number of particles, at least 1.
    :param max_plate_nesting: the number of plate dims the model uses.
    :param ess_threshold: resample when the effective sample size is below this fraction of
        ``num_particles``; in ``(0, 1]``.
    :raises AssertionError: on ``num_particles < 1`` or an ``ess_threshold`` out of range.

    Beyond Pyro, :meth:`get_log_evidence` returns the filter's estimate of
    ``log p(observations so far)``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> class Walk:
    ...     def init(self, state):
    ...         state["z"] = ember.sample("z_init", dist.Normal(0.0, 1.0))
    ...     def step(self, state, y):
    ...         state["z"] = ember.sample("z", dist.Normal(state["z"], 1.0))
    ...         ember.sample("y", dist.Normal(state["z"], 1.0), obs=y)
    >>> class Propose:  # reads the state only
    ...     def init(self, state):
    ...         ember.sample("z_init", dist.Normal(0.0, 1.0))
    ...     def step(self, state, y):
    ...         ember.sample("z", dist.Normal(state["z"], 1.0))
    >>> smc = SMCFilter(Walk(), Propose(), num_particles=20, max_plate_nesting=0)
    >>> smc.init()
    >>> for y in [0.5, 1.0]:
    ...     smc.step(torch.tensor(y))
    >>> smc.state["z"].shape, bool(smc.get_log_evidence() < 0)
    (torch.Size([20]), True)
    """

    def __init__(
        self, model: Any, guide: Any, num_particles: int, max_plate_nesting: int, *, ess_threshold: float = 0.5
    ) -> None:
        if not 0 < ess_threshold <= 1:
            raise AssertionError(f"ess_threshold must be in (0, 1], got {ess_threshold}")
        self.state = SMCState(num_particles)
        self.model = model
        self.guide = guide
        self.num_particles = num_particles
        self.max_plate_nesting = max_plate_nesting
        self.ess_threshold = ess_threshold
        self.particle_plate = plate("particles", num_particles, dim=-1 - max_plate_nesting)
        self._log_evidence = torch.zeros(())

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Run the model's and guide's ``init``, weigh and maybe resample; arguments go to both."""
        self._log_evidence = torch.zeros(())
        self._advance(self.model.init, self.guide.init, args, kwargs)

    def step(self, *args: Any, **kwargs: Any) -> None:
        """Run the model's and guide's ``step``, weigh and maybe resample; arguments go to both."""
        self._advance(self.model.step, self.guide.step, args, kwargs)

    def _advance(self, model_fn: Any, guide_fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with block(), self.particle_plate:
            with self.state._lock():
                guide_trace = trace(guide_fn).get_trace(self.state, *args, **kwargs)
            model_trace = trace(replay(model_fn, trace=guide_trace)).get_trace(self.state, *args, **kwargs)
        self._update_weights(model_trace, guide_trace)
        self._maybe_importance_resample()

    def get_empirical(self) -> dict[Hashable, Any]:
        """The weighted particles of each state entry, as an ``Empirical`` distribution by key."""
        empirical = getattr(dist, "Empirical", None)
        if empirical is None:
            raise NotImplementedError("SMCFilter.get_empirical needs ember.distributions.Empirical")
        return {key: empirical(value, self.state._log_weights) for key, value in self.state.items()}

    def get_log_evidence(self) -> torch.Tensor:
        """The estimate of ``log p(y_1..t)`` from the weights seen so far (Ember's addition).

        The product over resampling epochs of the mean particle weight: unbiased for the
        evidence itself, so its log is slightly biased low.
        """
        return self._log_evidence + self.state._log_weights.logsumexp(-1) - math.log(self.num_particles)

    def _per_particle(self, site: Any) -> torch.Tensor:
        log_prob: torch.Tensor = site["log_prob"]
        return log_prob.reshape(self.num_particles, -1).sum(-1)

    @torch.no_grad()
    def _update_weights(self, model_trace: Trace, guide_trace: Trace) -> None:
        model_trace = prune_subsample_sites(model_trace)
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace.compute_log_prob()
        guide_trace.compute_log_prob()
        log_weights = self.state._log_weights
        for name, guide_site in guide_trace.nodes.items():
            if guide_site["type"] == "sample":
                log_weights += self._per_particle(model_trace.nodes[name]) - self._per_particle(guide_site)
                if not log_weights.max() > -math.inf:
                    raise SMCFailed(f"Failed to find feasible hypothesis after site {name}")
        for site in model_trace.nodes.values():
            if site["type"] == "sample" and site["is_observed"]:
                log_weights += self._per_particle(site)
                if not log_weights.max() > -math.inf:
                    raise SMCFailed(f"Failed to find feasible hypothesis after site {site['name']}")
        # Keep the weights near 0; what is taken out is kept in the evidence.
        top = log_weights.max()
        log_weights -= top
        self._log_evidence = self._log_evidence + top

    def _maybe_importance_resample(self) -> None:
        if not self.state:
            return
        log_weights = self.state._log_weights
        total = log_weights.logsumexp(-1)
        log_weights -= total
        self._log_evidence = self._log_evidence + total
        probs = log_weights.exp()
        ess = probs.dot(probs).reciprocal()
        if ess < self.ess_threshold * self.num_particles:
            self._importance_resample(probs)

    def _importance_resample(self, probs: torch.Tensor) -> None:
        self.state._resample(_systematic_sample(probs))
        # Equal weights of 1 now stand for the normalised weights 1/N they replace.
        self._log_evidence = self._log_evidence - math.log(self.num_particles)
