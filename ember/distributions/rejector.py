"""Rejection sampling as a distribution, with a score function for the acceptance step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions.score_parts import ScoreParts
from ember.distributions.torch_distribution import TorchDistribution, TorchDistributionMixin

__all__ = ["Rejector"]


class Rejector(TorchDistribution):
    """Samples of ``propose`` accepted with probability ``exp(log_prob_accept(x))``.

    The density is ``propose.log_prob(x) + log_prob_accept(x) - log_scale``, where
    ``log_scale`` is the log of the overall acceptance rate. ``rsample`` proposes until every
    batch element is accepted; gradients flow through the accepted proposals, and
    :meth:`score_parts` adds the acceptance log-probability as a score function, which makes
    gradient estimates unbiased.

    :param propose: the proposal distribution (reparameterized for ``rsample`` gradients).
    :param log_prob_accept: the log acceptance probability of a proposal (at most 0).
    :param log_scale: the log of the total acceptance probability.
    :param batch_shape: defaults to the proposal's.
    :param event_shape: defaults to the proposal's.

    >>> import ember.distributions as dist
    >>> d = Rejector(dist.Exponential(torch.ones(3)), lambda x: -x, torch.tensor(0.5).log())
    >>> d.rsample().shape
    torch.Size([3])
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = True

    def __init__(
        self,
        propose: TorchDistributionMixin,
        log_prob_accept: Callable[[torch.Tensor], torch.Tensor],
        log_scale: torch.Tensor | float,
        *,
        batch_shape: _size | None = None,
        event_shape: _size | None = None,
    ) -> None:
        self.propose = propose
        self.log_prob_accept = log_prob_accept
        self._log_scale = log_scale
        batch = propose.batch_shape if batch_shape is None else torch.Size(batch_shape)
        event = propose.event_shape if event_shape is None else torch.Size(event_shape)
        super().__init__(batch, event)
        # One-entry caches: an ELBO scores the same sample through log_prob and score_parts.
        self._accept_cache: tuple[Any, Any] = (None, None)
        self._propose_cache: tuple[Any, Any] = (None, None)

    def _log_prob_accept(self, x: torch.Tensor) -> torch.Tensor:
        if x is not self._accept_cache[0]:
            self._accept_cache = (x, self.log_prob_accept(x) - self._log_scale)
        result: torch.Tensor = self._accept_cache[1]
        return result

    def _propose_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        if x is not self._propose_cache[0]:
            self._propose_cache = (x, self.propose.log_prob(x))
        result: torch.Tensor = self._propose_cache[1]
        return result

    def rsample(
        self, sample_shape: _size = torch.Size(), *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Propose until every element is accepted; reparameterized through the proposals.

        :param sample_shape: the shape of independent draws.
        :param generator: an optional random generator, passed to the proposal.
        """
        shape = torch.Size(sample_shape)

        def propose() -> torch.Tensor:
            if generator is not None:
                return self.propose(shape, generator=generator)  # type: ignore[call-arg]  # a proposal that takes a generator
            return self.propose(shape)

        def accepted(x: torch.Tensor) -> torch.Tensor:
            probs = torch.exp(self.log_prob_accept(x)).clamp_(0.0, 1.0)
            return torch.bernoulli(probs, generator=generator).bool()

        x = propose()
        done = accepted(x)
        while not done.all():
            proposal = propose()
            accept = accepted(proposal) & ~done
            if accept.any():
                x = torch.where(self._expand_to_event(accept, x), proposal, x)
                done = done | accept
        return x

    def _expand_to_event(self, mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return mask.reshape(mask.shape + (1,) * (like.dim() - mask.dim())).expand(like.shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``propose.log_prob(value) + log_prob_accept(value) - log_scale``."""
        return self._propose_log_prob(value) + self._log_prob_accept(value)

    def score_parts(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ScoreParts:
        """The log density, with the acceptance log-probability as the score function.

        :param x: the value to score.
        """
        score_function = self._log_prob_accept(x)
        log_prob = self.log_prob(x)
        return ScoreParts(log_prob, score_function, log_prob)
