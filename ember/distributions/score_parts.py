"""The terms a stochastic gradient estimator needs from one sample site."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ember.distributions.util import scale_and_mask

__all__ = ["ScoreParts"]


class ScoreParts(NamedTuple):
    """The pathwise and score-function terms of one site's log density.

    A reparameterized site contributes ``(log_prob, 0, log_prob)``; any other site contributes
    ``(log_prob, log_prob, 0)``.

    :param log_prob: the log density of the value.
    :param score_function: the term whose gradient is the score-function (REINFORCE) estimator.
    :param entropy_term: the term whose gradient is the pathwise estimator.

    >>> lp = torch.tensor([-1.0, -2.0])
    >>> ScoreParts(lp, lp, 0).scale_and_mask(2.0, torch.tensor([True, False]))
    ScoreParts(log_prob=tensor([-2., 0.]), score_function=tensor([-1., -2.]), entropy_term=0)
    """

    log_prob: torch.Tensor
    score_function: torch.Tensor | float
    entropy_term: torch.Tensor | float

    def scale_and_mask(
        self, scale: torch.Tensor | float = 1.0, mask: torch.Tensor | bool | None = None
    ) -> ScoreParts:
        """Scale and mask ``log_prob`` and ``entropy_term`` by a data multiplicity factor.

        ``score_function`` is left alone: it multiplies a cost that is already scaled.

        :param scale: a positive number or tensor.
        :param mask: ``None``, a Python bool, or a bool tensor.
        """
        log_prob = scale_and_mask(self.log_prob, scale, mask)
        # A reparameterized site's entropy term is its log_prob: scale it once, not twice.
        entropy_term = log_prob if self.entropy_term is self.log_prob else scale_and_mask(self.entropy_term, scale, mask)
        return ScoreParts(log_prob, self.score_function, entropy_term)
