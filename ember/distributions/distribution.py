"""The abstract base every Ember distribution derives from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

import torch

from ember.distributions.score_parts import ScoreParts

__all__ = ["Distribution"]


class Distribution(ABC):
    """Base class for parameterized probability distributions, as in Pyro.

    Subclasses implement :meth:`sample` and :meth:`log_prob`; calling a distribution draws a
    sample. ``has_rsample`` says whether samples are reparameterized (so gradients flow
    through them) and ``has_enumerate_support`` whether :meth:`enumerate_support` works.

    >>> class Coin(Distribution):
    ...     def sample(self) -> torch.Tensor:
    ...         return torch.tensor(1.0)
    ...     def log_prob(self, value: torch.Tensor) -> torch.Tensor:
    ...         return torch.tensor(0.5).log().expand(value.shape)
    >>> Coin()()
    tensor(1.)
    >>> Coin().score_parts(torch.tensor(1.0)).entropy_term
    0
    """

    has_rsample: bool = False

    @property
    def has_enumerate_support(self) -> bool:
        """Whether :meth:`enumerate_support` works; subclasses override with a class attribute."""
        return False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Draw a sample; arguments are passed to :meth:`sample`."""
        return self.sample(*args, **kwargs)

    @abstractmethod
    def sample(self, *args: Any, **kwargs: Any) -> Any:
        """Draw a sample (a tensor, for every distribution Ember ships)."""
        raise NotImplementedError

    @abstractmethod
    def log_prob(self, *args: Any, **kwargs: Any) -> Any:
        """Evaluate the log density of a value."""
        raise NotImplementedError

    def score_parts(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ScoreParts:
        """Split the log density of ``x`` into the terms gradient estimators use.

        Reparameterized distributions give ``(log_prob, 0, log_prob)``, others
        ``(log_prob, log_prob, 0)``.

        :param x: the value to score.
        """
        log_prob: torch.Tensor = self.log_prob(x, *args, **kwargs)
        if self.has_rsample:
            return ScoreParts(log_prob, 0, log_prob)
        return ScoreParts(log_prob, log_prob, 0)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """Return every value in the support along a new leftmost dimension.

        :param expand: whether to expand the result over the batch shape.
        :raises NotImplementedError: unless ``has_enumerate_support`` is true.
        """
        raise NotImplementedError(f"Support not implemented for {type(self).__name__}")

    def has_rsample_(self, value: bool) -> Self:
        """Force reparameterized or score-function sampling, in place.

        :param value: whether to use ``rsample``.
        :returns: this distribution.
        :raises ValueError: if ``value`` is not a bool.
        """
        if not isinstance(value, bool):
            raise ValueError(f"Expected value in [False,True], actual {value}")
        self.has_rsample = value
        return self
