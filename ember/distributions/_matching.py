"""The shared body of the matching distributions: assignment solver, support check, partition function."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.distributions import constraints
from torch.distributions.utils import lazy_property
from torch.types import _size

from ember.distributions.torch import Categorical
from ember.distributions.torch_distribution import TorchDistribution
from ember._util import warn_at_caller


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


class _Matching(TorchDistribution):
    """A distribution over assignments ``value[source] = destination`` of a 2-D ``logits``.

    ``p(v)`` is proportional to ``exp(sum_s logits[s, v[s]])``, normalized exactly over
    ``enumerate_support()`` or by a subclass's Bethe free energy after ``bp_iters`` sweeps.
    A subclass checks and records the shape of ``logits`` and gives the support.
    """

    arg_constraints = {"logits": constraints.real}
    has_enumerate_support = True
    logits: torch.Tensor
    bp_iters: int | None
    _name: ClassVar[str]

    def __init__(
        self, logits: torch.Tensor, *, bp_iters: int | None = None, validate_args: bool | None = None
    ) -> None:
        if logits.dim() != 2:
            raise NotImplementedError(f"{self._name} does not support batching")
        self._read_shape(logits)
        if bp_iters is not None and (not isinstance(bp_iters, int) or bp_iters <= 0):
            raise ValueError(f"{self._name}: expected bp_iters a positive int, got {bp_iters!r}")
        self.logits = logits
        self.bp_iters = bp_iters
        super().__init__(torch.Size(), torch.Size((logits.size(0),)), validate_args=validate_args)

    def _read_shape(self, logits: torch.Tensor) -> None:
        raise NotImplementedError

    def _bethe_free_energy(self, logits: torch.Tensor, finfo: torch.finfo, bp_iters: int) -> torch.Tensor:
        raise NotImplementedError

    def _scores(self, matchings: torch.Tensor) -> torch.Tensor:
        sources = torch.arange(matchings.size(-1), device=matchings.device)
        return self.logits[sources, matchings].sum(-1)

    @lazy_property
    def log_partition_function(self) -> torch.Tensor:
        """The log partition function (the log permanent of ``exp(logits)`` for one-one
        matchings): exact, or the Bethe approximation."""
        if self.bp_iters is None:
            return self._scores(self.enumerate_support()).logsumexp(-1)
        finfo = torch.finfo(self.logits.dtype)
        shift = self.logits.detach().amax(1, keepdim=True).clamp(min=finfo.min, max=finfo.max)
        return shift.sum() - self._bethe_free_energy(self.logits - shift, finfo, self.bp_iters)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The matching's total logit minus the log partition function.

        :param value: matchings, ``value[..., s]`` the destination of source ``s``.
        """
        if self._validate_args:
            self._validate_sample(value)
        return self._scores(value) - self.log_partition_function

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Exact draws by enumeration.

        :param sample_shape: the shape of independent draws.
        :raises NotImplementedError: with ``bp_iters`` set, as in Pyro.
        """
        if self.bp_iters is not None:
            raise NotImplementedError(f"{self._name}.sample() with bp_iters is not implemented")
        support = self.enumerate_support()
        index = Categorical(logits=self._scores(support)).sample(sample_shape)
        return support[index]
