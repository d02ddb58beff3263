"""Random perfect matchings of a bipartite graph: :class:`OneOneMatching`."""

from __future__ import annotations

import itertools

import torch
from torch.distributions import constraints
from torch.distributions.utils import lazy_property
from torch.types import _size

from ember.distributions.torch import Categorical
from ember.distributions.torch_distribution import TorchDistribution
from ember._util import warn_at_caller

__all__ = ["OneOneMatching", "OneOneMatchingConstraint", "maximum_weight_matching"]


def _assignment(cost: list[list[float]]) -> list[int]:
    """Minimum-cost assignment of rows to distinct columns (``rows <= cols``), Hungarian method.

    Shortest augmenting paths with row and column potentials; ``O(rows^2 cols)``.
    """
    rows, cols = len(cost), len(cost[0])
    inf = float("inf")
    row_potential = [0.0] * (rows + 1)
    col_potential = [0.0] * (cols + 1)
    owner = [0] * (cols + 1)  # owner[j]: the row matched to column j (1-based; 0 = free)
    way = [0] * (cols + 1)
    for i in range(1, rows + 1):
        owner[0] = i
        j0 = 0
        slack = [inf] * (cols + 1)
        used = [False] * (cols + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = owner[j0], inf, 0
            for j in range(1, cols + 1):
                if not used[j]:
                    reduced = cost[i0 - 1][j - 1] - row_potential[i0] - col_potential[j]
                    if reduced < slack[j]:
                        slack[j], way[j] = reduced, j0
                    if slack[j] < delta:
                        delta, j1 = slack[j], j
            for j in range(cols + 1):
                if used[j]:
                    row_potential[owner[j]] += delta
                    col_potential[j] -= delta
                else:
                    slack[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    result = [0] * rows
    for j in range(1, cols + 1):
        if owner[j]:
            result[owner[j] - 1] = j - 1
    return result


@torch.no_grad()
def maximum_weight_matching(logits: torch.Tensor) -> torch.Tensor:
    """The perfect matching of largest total logit: ``value[source] = destination``.

    :param logits: a square ``(sources, destinations)`` matrix of edge logits.

    >>> maximum_weight_matching(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    tensor([1, 0])
    """
    cost = (-logits.detach().cpu().double()).tolist()
    return torch.tensor(_assignment(cost), dtype=torch.long, device=logits.device)


def _check_assignment(value: torch.Tensor, size: int, num_destins: int, copies: int) -> torch.Tensor:
    if value.dim() == 0:
        warn_at_caller("Invalid event_shape: ()")
        return torch.tensor(False)
    if value.shape[-1:] != (size,):
        warn_at_caller(f"Invalid event_shape: {value.shape[-1:]}")
        return torch.tensor(False)
    if bool(value.min() < 0) or bool(value.max() >= num_destins):
        warn_at_caller("Value out of bounds")
        return torch.tensor(False)
    counts = torch.zeros(value.shape[:-1] + (num_destins,))
    counts.scatter_add_(-1, value, torch.ones(value.shape))
    if bool((counts != copies).any()):
        warn_at_caller("Matching is not binary")
        return torch.tensor(False)
    return torch.tensor(True)


class OneOneMatchingConstraint(constraints.Constraint):
    """Permutations of ``range(num_nodes)``: perfect matchings, ``value[source] = destination``.

    :param num_nodes: the number of sources (and destinations).
    """

    def __init__(self, num_nodes: int) -> None:
        self.num_nodes = num_nodes

    def check(self, value: torch.Tensor) -> torch.Tensor:
        """Whether every ``value`` is a permutation (warns with the reason when not)."""
        return _check_assignment(value, self.num_nodes, self.num_nodes, 1)


class OneOneMatching(TorchDistribution):
    """Random perfect matchings between ``N`` sources and ``N`` destinations.

    ``p(v)`` is proportional to ``exp(sum_s logits[s, v[s]])``: a permanent-normalized
    distribution over permutations. With ``bp_iters=None`` everything is exact by enumerating
    the ``N!`` permutations; with ``bp_iters`` the log partition function is the Bethe
    approximation after that many belief-propagation (Sinkhorn) sweeps, for large ``N``.

    :param logits: an ``(N, N)`` matrix of edge logits.
    :param bp_iters: belief-propagation sweeps for an approximate partition function.
    :param validate_args: whether to validate arguments and samples.
    :raises NotImplementedError: for batched (non-2-D) logits, as in Pyro.
    :raises ValueError: if ``logits`` is not square or ``bp_iters`` not a positive int.

    >>> OneOneMatching(torch.zeros(3, 3)).log_prob(torch.tensor([2, 0, 1])).exp()
    tensor(0.1667)
    """

    arg_constraints = {"logits": constraints.real}
    has_enumerate_support = True

    def __init__(
        self, logits: torch.Tensor, *, bp_iters: int | None = None, validate_args: bool | None = None
    ) -> None:
        if logits.dim() != 2:
            raise NotImplementedError("OneOneMatching does not support batching")
        if logits.size(0) != logits.size(1):
            raise ValueError(f"OneOneMatching: expected square logits, got shape {tuple(logits.shape)}")
        if bp_iters is not None and (not isinstance(bp_iters, int) or bp_iters <= 0):
            raise ValueError(f"OneOneMatching: expected bp_iters a positive int, got {bp_iters!r}")
        self.num_nodes = logits.size(0)
        self.logits = logits
        self.bp_iters = bp_iters
        super().__init__(torch.Size(), torch.Size((self.num_nodes,)), validate_args=validate_args)

    @constraints.dependent_property
    def support(self) -> OneOneMatchingConstraint:
        """Permutations of ``range(N)``."""
        return OneOneMatchingConstraint(self.num_nodes)

    def _scores(self, matchings: torch.Tensor) -> torch.Tensor:
        sources = torch.arange(matchings.size(-1), device=matchings.device)
        return self.logits[sources, matchings].sum(-1)

    @lazy_property
    def log_partition_function(self) -> torch.Tensor:
        """The log permanent of ``exp(logits)``: exact, or the Bethe approximation."""
        if self.bp_iters is None:
            return self._scores(self.enumerate_support()).logsumexp(-1)
        finfo = torch.finfo(self.logits.dtype)
        shift = self.logits.detach().amax(1, keepdim=True).clamp(min=finfo.min, max=finfo.max)
        logits = self.logits - shift
        destination = logits.logsumexp(0)
        for _ in range(self.bp_iters):
            source = (logits - destination).logsumexp(-1, True)
            destination = (logits - source).logsumexp(0)
        beliefs = (logits - (destination + source)).exp()
        tiny = finfo.tiny
        complement = (1 - beliefs).clamp(min=0)
        safe_logits = logits.clamp(min=-1 / finfo.eps)
        free_energy = (beliefs * (beliefs.clamp(min=tiny).log() - safe_logits)).sum() - (
            complement * complement.clamp(min=tiny).log()
        ).sum()
        return shift.sum() - free_energy

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The matching's total logit minus the log partition function.

        :param value: permutations, ``value[..., s]`` the destination of source ``s``.
        """
        if self._validate_args:
            self._validate_sample(value)
        return self._scores(value) - self.log_partition_function

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """All ``N!`` permutations in lexicographic order.

        :param expand: unused: the batch shape is empty.
        """
        return torch.tensor(list(itertools.permutations(range(self.num_nodes))), dtype=torch.long)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Exact draws by enumeration.

        :param sample_shape: the shape of independent draws.
        :raises NotImplementedError: with ``bp_iters`` set, as in Pyro.
        """
        if self.bp_iters is not None:
            raise NotImplementedError("OneOneMatching.sample() with bp_iters is not implemented")
        support = self.enumerate_support()
        index = Categorical(logits=self._scores(support)).sample(sample_shape)
        return support[index]

    def mode(self) -> torch.Tensor:  # type: ignore[override]  # Pyro's mode is a method here
        """The most likely matching (maximum-weight assignment)."""
        return maximum_weight_matching(self.logits)
