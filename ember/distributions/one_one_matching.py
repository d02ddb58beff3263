"""Random perfect matchings of a bipartite graph: :class:`OneOneMatching`."""

from __future__ import annotations

import itertools

import torch
from torch.distributions import constraints

from ember.distributions._matching import _assignment, _check_assignment, _Matching

__all__ = ["OneOneMatching", "OneOneMatchingConstraint", "maximum_weight_matching"]


@torch.no_grad()
def maximum_weight_matching(logits: torch.Tensor) -> torch.Tensor:
    """The perfect matching of largest total logit: ``value[source] = destination``.

    :param logits: a square ``(sources, destinations)`` matrix of edge logits.

    >>> maximum_weight_matching(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    tensor([1, 0])
    """
    cost = (-logits.detach().cpu().double()).tolist()
    return torch.tensor(_assignment(cost), dtype=torch.long, device=logits.device)


class OneOneMatchingConstraint(constraints.Constraint):
    """Permutations of ``range(num_nodes)``: perfect matchings, ``value[source] = destination``.

    :param num_nodes: the number of sources (and destinations).
    """

    def __init__(self, num_nodes: int) -> None:
        self.num_nodes = num_nodes

    def check(self, value: torch.Tensor) -> torch.Tensor:
        """Whether every ``value`` is a permutation (warns with the reason when not)."""
        return _check_assignment(value, self.num_nodes, self.num_nodes, 1)


class OneOneMatching(_Matching):
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

    def __init__(
        self, logits: torch.Tensor, *, bp_iters: int | None = None, validate_args: bool | None = None
    ) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(logits, bp_iters=bp_iters, validate_args=validate_args)

    _name = "OneOneMatching"

    def _read_shape(self, logits: torch.Tensor) -> None:
        if logits.size(0) != logits.size(1):
            raise ValueError(f"OneOneMatching: expected square logits, got shape {tuple(logits.shape)}")
        self.num_nodes = logits.size(0)

    @constraints.dependent_property
    def support(self) -> OneOneMatchingConstraint:
        """Permutations of ``range(N)``."""
        return OneOneMatchingConstraint(self.num_nodes)

    def _bethe_free_energy(self, logits: torch.Tensor, finfo: torch.finfo, bp_iters: int) -> torch.Tensor:
        destination = logits.logsumexp(0)
        for _ in range(bp_iters):
            source = (logits - destination).logsumexp(-1, True)
            destination = (logits - source).logsumexp(0)
        beliefs = (logits - (destination + source)).exp()
        tiny = finfo.tiny
        complement = (1 - beliefs).clamp(min=0)
        safe_logits = logits.clamp(min=-1 / finfo.eps)
        free_energy: torch.Tensor = (beliefs * (beliefs.clamp(min=tiny).log() - safe_logits)).sum() - (
            complement * complement.clamp(min=tiny).log()
        ).sum()
        return free_energy

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """All ``N!`` permutations in lexicographic order.

        :param expand: unused: the batch shape is empty.
        """
        return torch.tensor(list(itertools.permutations(range(self.num_nodes))), dtype=torch.long)

    def mode(self) -> torch.Tensor:  # type: ignore[override]  # Pyro's mode is a method here
        """The most likely matching (maximum-weight assignment)."""
        return maximum_weight_matching(self.logits)
