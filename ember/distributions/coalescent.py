"""Kingman's coalescent: the times at which sampled lineages merge, going back in time.

Leaves are sampled at ``leaf_times``; going backwards, each pair of the ``k`` lineages alive
merges at rate ``rate`` (or the piecewise-constant ``rate_grid(t)``), so the next merger
comes at total rate ``rate * k (k - 1) / 2``. A phylogeny's ``N - 1`` coalescence times are
the events; the likelihood multiplies merger hazards by the survival of every interval.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_shape, is_validation_enabled

__all__ = [
    "CoalescentRateLikelihood",
    "CoalescentTimes",
    "CoalescentTimesConstraint",
    "CoalescentTimesWithRate",
]


class _Phylogeny(NamedTuple):
    times: torch.Tensor  # all event times, descending (latest first)
    lineages: torch.Tensor  # lineages alive just below each event
    binomial: torch.Tensor  # lineage pairs just below each event
    coal_binomial: torch.Tensor  # lineage pairs just above each coalescence, in input order


@torch.no_grad()
def _make_phylogeny(leaf_times: torch.Tensor, coal_times: torch.Tensor) -> _Phylogeny:
    n = leaf_times.size(-1)
    batch = broadcast_shape(leaf_times.shape[:-1], coal_times.shape[:-1])
    times = torch.cat([coal_times.expand(batch + (n - 1,)), leaf_times.expand(batch + (n,))], -1)
    # A coalescence removes a lineage and a leaf adds one, counting down from the latest time.
    steps = torch.cat([-torch.ones(n - 1), torch.ones(n)]).to(times)
    times, order = times.sort(dim=-1, descending=True)
    lineages = steps[order].cumsum(-1)
    binomial = lineages * (lineages - 1) / 2
    position = torch.empty_like(order)
    position.scatter_(-1, order, torch.arange(2 * n - 1, device=order.device).expand_as(order))
    # A merger above every leaf (an invalid phylogeny) reads index 0 instead of failing here.
    coal_binomial = binomial.gather(-1, (position[..., : n - 1] - 1).clamp(min=0))
    return _Phylogeny(times, lineages, binomial, coal_binomial)


class CoalescentTimesConstraint(constraints.Constraint):
    """Coalescence times that keep at least one lineage alive, optionally sorted.

    :param leaf_times: the leaves' sampling times.
    :param ordered: whether the times must also be sorted ascending.
    """

    def __init__(self, leaf_times: torch.Tensor, *, ordered: bool = True) -> None:
        self.leaf_times = leaf_times
        self.ordered = ordered

    def check(self, value: torch.Tensor) -> torch.Tensor:
        """Whether ``value`` is a valid set of coalescence times for ``leaf_times``."""
        alive = (_make_phylogeny(self.leaf_times, value).lineages > 0).all(dim=-1)
        if not self.ordered:
            return alive
        return alive & (value[..., :-1] <= value[..., 1:]).all(dim=-1)


class CoalescentTimes(TorchDistribution):
    """The ``N - 1`` coalescence times of ``N`` leaves under a constant-rate Kingman coalescent.

    Values are sorted ascending. Leaves may be sampled at any times (heterochronous).

    :param leaf_times: the ``N`` leaves' sampling times (any order, duplicates allowed).
    :param rate: the pairwise merger rate (the inverse effective population size).
    :param validate_args: whether to validate arguments and samples.

    >>> d = CoalescentTimes(torch.zeros(2))
    >>> d.log_prob(torch.tensor([-1.0]))  # one merger at rate 1, one time unit back
    tensor(-1.)
    """

    arg_constraints = {"leaf_times": constraints.real, "rate": constraints.positive}

    def __init__(
        self,
        leaf_times: torch.Tensor,
        rate: torch.Tensor | float = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
        rate = torch.as_tensor(rate, dtype=leaf_times.dtype, device=leaf_times.device)
        batch_shape = broadcast_shape(rate.shape, leaf_times.shape[:-1])
        self.leaf_times = leaf_times
        self.rate = rate
        super().__init__(
            torch.Size(batch_shape), torch.Size((leaf_times.size(-1) - 1,)), validate_args=validate_args
        )

    @constraints.dependent_property
    def support(self) -> CoalescentTimesConstraint:
        """Sorted coalescence times that keep a lineage alive."""
        return CoalescentTimesConstraint(self.leaf_times)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Merger hazards times interval survivals, for sorted coalescence times.

        :param value: coalescence times, sorted ascending, last dimension ``N - 1``.
        """
        if self._validate_args:
            self._validate_sample(value)
        tree = _make_phylogeny(self.leaf_times, value)
        intervals = tree.times[..., :-1] - tree.times[..., 1:]
        exposure = (tree.binomial[..., :-1] * intervals).sum(-1)
        # The values are sorted, so the density carries the pair counts of each merger.
        return self.rate.log() * value.size(-1) - self.rate * exposure + tree.coal_binomial.log().sum(-1)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Simulate the coalescent backwards from the leaves.

        :param sample_shape: the shape of independent draws.
        """
        shape = self.shape(sample_shape)[:-1]
        leaves = self.leaf_times.detach().expand(shape + self.leaf_times.shape[-1:]).reshape(
            -1, self.leaf_times.size(-1)
        )
        rates = self.rate.detach().expand(shape).reshape(-1)
        draws = [_simulate(leaf, float(rate)) for leaf, rate in zip(leaves, rates)]
        return torch.stack(draws).reshape(shape + self.event_shape) if draws else leaves.new_empty(
            shape + self.event_shape
        )


def _simulate(leaf_times: torch.Tensor, rate: float) -> torch.Tensor:
    """One coalescent history for one set of leaves, at a constant pairwise rate."""
    n = leaf_times.size(-1)
    leaves = leaf_times.sort(descending=True).values.tolist()
    waits = (leaf_times.new_empty(n - 1).exponential_() / rate).tolist()
    result = []
    next_leaf, t, active = 1, leaves[0], 1
    for wait in waits:
        # Add leaves whose sampling time comes before the merger we are waiting for.
        while next_leaf < n and (active < 2 or wait > (t - leaves[next_leaf]) * active * (active - 1) / 2):
            wait -= (t - leaves[next_leaf]) * active * (active - 1) / 2
            t = leaves[next_leaf]
            next_leaf += 1
            active += 1
        t -= wait / (active * (active - 1) / 2)
        active -= 1
        result.append(t)
    result.reverse()
    return leaf_times.new_tensor(result)


def _interpolate(array: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of ``array`` (on ``0, 1, ...``) at ``x``, extrapolating at the ends."""
    with torch.no_grad():
        lower = x.floor().clamp(min=0, max=array.size(-1) - 2)
    shape = broadcast_shape(array.shape[:-1], x.shape[:-1])
    array = array.expand(shape + array.shape[-1:])
    index = lower.long().expand(shape + x.shape[-1:])
    left = array.gather(-1, index)
    right = array.gather(-1, index + 1)
    return left * (lower + 1 - x) + right * (x - lower)


class CoalescentTimesWithRate(TorchDistribution):
    """Coalescence times under a Kingman coalescent whose rate is piecewise constant in time.

    ``rate_grid[..., j]`` is the pairwise rate on ``[j, j + 1)``; times before 0 use the first
    rate and times after the grid the last.

    :param leaf_times: the ``N`` leaves' sampling times.
    :param rate_grid: positive rates on unit time bins.
    :param validate_args: whether to validate arguments and samples.

    >>> d = CoalescentTimesWithRate(torch.tensor([1.0, 1.0]), torch.ones(3))
    >>> d.log_prob(torch.tensor([0.5]))
    tensor(-0.5000)
    """

    arg_constraints = {"leaf_times": constraints.real, "rate_grid": constraints.positive}

    def __init__(
        self, leaf_times: torch.Tensor, rate_grid: torch.Tensor, *, validate_args: bool | None = None
    ) -> None:
        batch_shape = broadcast_shape(leaf_times.shape[:-1], rate_grid.shape[:-1])
        self.leaf_times = leaf_times
        self.rate_grid = rate_grid
        super().__init__(
            torch.Size(batch_shape), torch.Size((leaf_times.size(-1) - 1,)), validate_args=validate_args
        )

    @constraints.dependent_property
    def support(self) -> CoalescentTimesConstraint:
        """Sorted coalescence times that keep a lineage alive."""
        return CoalescentTimesConstraint(self.leaf_times)

    @property
    def duration(self) -> int:
        """The number of rate bins."""
        return self.rate_grid.size(-1)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """A view with batch shape ``batch_shape`` (the parameters broadcast in ``log_prob``).

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, CoalescentTimesWithRate, _instance)
        new.leaf_times = self.leaf_times
        new.rate_grid = self.rate_grid
        TorchDistribution.__init__(new, torch.Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self.__dict__.get("_validate_args", self._validate_args)
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Merger hazards times interval survivals, with the rate integrated over each interval.

        :param value: coalescence times, sorted ascending.
        """
        if self._validate_args:
            self._validate_sample(value)
        tree = _make_phylogeny(self.leaf_times, value)
        cumulative = torch.nn.functional.pad(self.rate_grid.cumsum(-1), (1, 0), value=0)
        # The latest event leaves a single lineage above it, so it adds no exposure.
        integral = _interpolate(cumulative, tree.times[..., 1:])
        integral = (integral[..., :-1] - integral[..., 1:]).clamp(min=torch.finfo(integral.dtype).tiny)
        log_prob = -(tree.binomial[..., 1:-1] * integral).sum(-1)
        bins = value.floor().clamp(min=0, max=self.duration - 1).long()
        shape = broadcast_shape(self.rate_grid.shape[:-1], bins.shape[:-1])
        grid = self.rate_grid.expand(shape + self.rate_grid.shape[-1:])
        rates = grid.gather(-1, bins.expand(shape + bins.shape[-1:]))
        hazards = tree.coal_binomial * rates
        log_prob = log_prob + hazards.clamp(min=torch.finfo(hazards.dtype).tiny).log().sum(-1)
        return log_prob.expand(broadcast_shape(self.batch_shape, value.shape[:-1]))


class CoalescentRateLikelihood:
    """:class:`CoalescentTimesWithRate`'s likelihood split into one term per rate bin.

    ``likelihood(rate_grid).sum(-1)`` equals ``CoalescentTimesWithRate(leaf_times,
    rate_grid).log_prob(coal_times)`` (for unbatched inputs), but each bin's term depends only
    on its own rate, so bins can sit in a ``plate`` or be scored one at a time
    (``likelihood(rate_grid[t], t)``). Each term is ``const + linear * rate + count * log(rate)``.

    :param leaf_times: the ``N`` leaves' sampling times.
    :param coal_times: the ``N - 1`` coalescence times (any order).
    :param duration: the number of rate bins, at least 2.
    :param validate_args: whether to check that the times form a valid phylogeny.
    :raises ValueError: if the sizes do not fit or the phylogeny is invalid.

    >>> likelihood = CoalescentRateLikelihood(torch.tensor([1.0, 1.0]), torch.tensor([0.5]), 3)
    >>> likelihood(torch.ones(3))
    tensor([-0.5000,  0.0000,  0.0000])
    """

    def __init__(
        self,
        leaf_times: torch.Tensor,
        coal_times: torch.Tensor,
        duration: int,
        *,
        validate_args: bool | None = None,
    ) -> None:
        if leaf_times.size(-1) != 1 + coal_times.size(-1):
            raise ValueError(
                f"CoalescentRateLikelihood: expected one more leaf time than coal times, got "
                f"{tuple(leaf_times.shape)} and {tuple(coal_times.shape)}"
            )
        if not isinstance(duration, int) or duration < 2:
            raise ValueError(f"CoalescentRateLikelihood: expected an int duration >= 2, got {duration!r}")
        if validate_args is True or (validate_args is None and is_validation_enabled()):
            if not bool(CoalescentTimesConstraint(leaf_times, ordered=False).check(coal_times).all()):
                raise ValueError("Invalid (leaf_times, coal_times)")
        tree = _make_phylogeny(leaf_times, coal_times)
        upper, lower = tree.times[..., :-1], tree.times[..., 1:]  # each interval, top and bottom
        edges = torch.arange(duration + 1, dtype=tree.times.dtype, device=tree.times.device)
        bin_low = edges[:-1].clone()
        bin_high = edges[1:].clone()
        bin_low[0], bin_high[-1] = -torch.inf, torch.inf  # the end bins extend forever
        overlap = (
            torch.minimum(upper.unsqueeze(-1), bin_high) - torch.maximum(lower.unsqueeze(-1), bin_low)
        ).clamp(min=0)
        self._linear = -(tree.binomial[..., :-1].unsqueeze(-1) * overlap).sum(-2)
        bins = coal_times.floor().clamp(min=0, max=duration - 1).long()
        bins = bins.expand(tree.coal_binomial.shape)
        batch = tree.times.shape[:-1]
        self._const = leaf_times.new_zeros(batch + (duration,)).scatter_add_(-1, bins, tree.coal_binomial.log())
        self._log = leaf_times.new_zeros(batch + (duration,)).scatter_add_(
            -1, bins, torch.ones_like(tree.coal_binomial)
        )

    def __call__(self, rate_grid: torch.Tensor, t: slice | int = slice(None)) -> torch.Tensor:
        """The per-bin log-likelihood terms at ``rate_grid`` (restricted to bins ``t``).

        :param rate_grid: positive rates for the selected bins.
        :param t: the bins ``rate_grid`` covers: a slice or one index.
        """
        tiny = torch.finfo(rate_grid.dtype).tiny
        return (
            self._const[..., t]
            + self._linear[..., t] * rate_grid
            + self._log[..., t] * rate_grid.clamp(min=tiny).log()
        )
