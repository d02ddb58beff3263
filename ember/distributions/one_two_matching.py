"""Random matchings of ``2N`` sources to ``N`` destinations, two sources each: :class:`OneTwoMatching`."""

from __future__ import annotations

import math

import torch
from torch.distributions import constraints

from ember.distributions._matching import _assignment, _check_assignment, _Matching

__all__ = [
    "OneTwoMatching",
    "OneTwoMatchingConstraint",
    "enumerate_one_two_matchings",
    "maximum_weight_matching",
]


def enumerate_one_two_matchings(num_destins: int) -> torch.Tensor:
    """All ``(2N)! / 2^N`` assignments of ``2N`` sources to ``N`` destinations, two each.

    The last destination takes every pair of sources ``s0 < s1`` (in that loop order), with
    the remaining sources filled by the matchings of one destination fewer.

    :param num_destins: the number of destinations ``N``.

    >>> enumerate_one_two_matchings(2)
    tensor([[1, 1, 0, 0],
            [1, 0, 1, 0],
            [0, 1, 1, 0],
            [1, 0, 0, 1],
            [0, 1, 0, 1],
            [0, 0, 1, 1]])
    """
    if num_destins == 1:
        return torch.tensor([[0, 0]])
    sources = 2 * num_destins
    smaller = enumerate_one_two_matchings(num_destins - 1)
    blocks = []
    for s1 in range(sources):
        for s0 in range(s1):
            last = torch.full((len(smaller), 1), num_destins - 1, dtype=torch.long)
            blocks.append(
                torch.cat([smaller[:, :s0], last, smaller[:, s0 : s1 - 1], last, smaller[:, s1 - 1 :]], -1)
            )
    return torch.cat(blocks)


@torch.no_grad()
def maximum_weight_matching(logits: torch.Tensor) -> torch.Tensor:
    """The one-two matching of largest total logit: ``value[source] = destination``.

    :param logits: a ``(2N, N)`` matrix of edge logits.
    """
    doubled = torch.cat([logits, logits], dim=-1)  # two slots per destination
    cost = (-doubled.detach().cpu().double()).tolist()
    value = torch.tensor(_assignment(cost), dtype=torch.long, device=logits.device)
    return value % logits.size(1)


class OneTwoMatchingConstraint(constraints.Constraint):
    """Assignments of ``2N`` sources to ``N`` destinations using each destination twice.

    :param num_destins: the number of destinations ``N``.
    """

    def __init__(self, num_destins: int) -> None:
        self.num_destins = num_destins
        self.num_sources = 2 * num_destins

    def check(self, value: torch.Tensor) -> torch.Tensor:
        """Whether every ``value`` is such an assignment (warns with the reason when not)."""
        return _check_assignment(value, self.num_sources, self.num_destins, 2)


class OneTwoMatching(_Matching):
    """Random assignments of ``2N`` sources to ``N`` destinations, each destination taking two.

    ``p(v)`` is proportional to ``exp(sum_s logits[s, v[s]])``. With ``bp_iters=None`` all is
    exact by enumeration; with ``bp_iters`` the log partition function is a Bethe
    approximation after that many belief-propagation sweeps.

    :param logits: a ``(2N, N)`` matrix of edge logits.
    :param bp_iters: belief-propagation sweeps for an approximate partition function.
    :param validate_args: whether to validate arguments and samples.
    :raises NotImplementedError: for batched (non-2-D) logits, as in Pyro.
    :raises ValueError: if ``logits`` is not ``(2N, N)`` or ``bp_iters`` not a positive int.

    >>> OneTwoMatching(torch.zeros(4, 2)).log_prob(torch.tensor([0, 1, 1, 0])).exp()
    tensor(0.1667)
    """

    def __init__(
        self, logits: torch.Tensor, *, bp_iters: int | None = None, validate_args: bool | None = None
    ) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(logits, bp_iters=bp_iters, validate_args=validate_args)

    _name = "OneTwoMatching"

    def _read_shape(self, logits: torch.Tensor) -> None:
        if logits.size(0) != 2 * logits.size(1):
            raise ValueError(f"OneTwoMatching: expected logits of shape (2N, N), got {tuple(logits.shape)}")
        self.num_sources, self.num_destins = logits.shape

    @constraints.dependent_property
    def support(self) -> OneTwoMatchingConstraint:
        """Assignments using each destination twice."""
        return OneTwoMatchingConstraint(self.num_destins)

    def _bethe_free_energy(self, logits: torch.Tensor, finfo: torch.finfo, bp_iters: int) -> torch.Tensor:
        tiny = finfo.tiny
        # Each destination absorbs two units of flow, hence the log 2 in its message.
        destination = logits.logsumexp(0) - math.log(2)
        for _ in range(bp_iters):
            source = (logits - destination).logsumexp(-1, True)
            destination = (logits - source).logsumexp(0) - math.log(2)
        beliefs = (logits - (destination + source)).exp()
        complement = (1 - beliefs).clamp(min=0)
        internal_energy = -(beliefs * logits.clamp(min=-1 / finfo.eps)).sum()
        half = beliefs / 2
        entropy = -(half * half.clamp(min=tiny).log()).sum(0)
        pair_entropy = entropy + entropy.expm1().clamp(min=tiny).log() - math.log(2)
        free_energy: torch.Tensor = (
            internal_energy - pair_entropy.sum() - (complement * complement.clamp(min=tiny).log()).sum()
        )
        return free_energy

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """Every assignment, in :func:`enumerate_one_two_matchings` order.

        :param expand: unused: the batch shape is empty.
        """
        return enumerate_one_two_matchings(self.num_destins)

    def mode(self) -> torch.Tensor:  # type: ignore[override]  # Pyro's mode is a method here
        """The most likely assignment (maximum-weight matching with doubled destinations)."""
        return maximum_weight_matching(self.logits)
