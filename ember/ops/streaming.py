"""Statistics of a stream of samples that never holds the whole stream (except
:class:`StackStats`), at Pyro's ``pyro.ops.streaming`` path.

Each statistic is updated one sample at a time and two of the same type merge into a new one,
e.g. the statistics of several MCMC chains; :class:`StatsOfDict` keeps one per key of
dictionary samples. ``StreamingMCMC`` collects its samples this way.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any

import torch

__all__ = [
    "CountMeanStats",
    "CountMeanVarianceStats",
    "CountStats",
    "StackStats",
    "StatsOfDict",
    "StreamingStats",
]


def _require_tensor(sample: object, owner: str) -> torch.Tensor:
    if not isinstance(sample, torch.Tensor):
        raise AssertionError(f"{owner}.update expects a torch.Tensor sample, got {type(sample).__name__}")
    return sample


class StreamingStats(ABC):
    """A statistic of a stream of samples (trees of tensors), updated one sample at a time.

    Subclasses define :meth:`update`, :meth:`merge` and :meth:`get`; the result must not
    depend on the order of the samples.
    """

    @abstractmethod
    def update(self, sample: Any) -> None:
        """Fold one sample into this statistic (in place).

        :param sample: a tensor or a nested dict of tensors, of the same structure and
            shapes on every call.
        """

    @abstractmethod
    def merge(self, other: Any) -> StreamingStats:
        """A new statistic of the samples of ``self`` and ``other`` together, e.g. of two
        chains; neither is modified.

        :param other: a statistic of the same type.
        """

    @abstractmethod
    def get(self) -> Any:
        """The value of the statistic."""


def _check_same_type(self: StreamingStats, other: object) -> None:
    if not isinstance(other, type(self)):
        raise AssertionError(f"cannot merge {type(self).__name__} with {type(other).__name__}")


class CountStats(StreamingStats):
    """The number of samples only.

    >>> stats = CountStats()
    >>> stats.update(torch.randn(3, 3))
    >>> stats.get()
    {'count': 1}
    """

    def __init__(self) -> None:
        self.count = 0
        super().__init__()

    def update(self, sample: Any) -> None:
        """Count one more sample.

        :param sample: any sample.
        """
        self.count += 1

    def merge(self, other: CountStats) -> CountStats:
        """The count of both streams.

        :param other: another :class:`CountStats`.
        """
        _check_same_type(self, other)
        result = CountStats()
        result.count = self.count + other.count
        return result

    def get(self) -> dict[str, int]:
        """``{"count": n}``."""
        return {"count": self.count}


class StatsOfDict(StreamingStats):
    """One statistic per key of samples that are dicts (with the same keys every time).

    :param types: the statistic type (a zero-argument factory) for particular keys.
    :param default: the statistic type for every other key (by default :class:`CountStats`).

    >>> stats = StatsOfDict({"b": CountMeanStats})
    >>> stats.update({"a": torch.tensor(0.0), "b": torch.tensor([1.0, 2.0])})
    >>> stats.get()
    {'b': {'count': 1, 'mean': tensor([1., 2.])}, 'a': {'count': 1}}
    """

    def __init__(
        self,
        types: dict[Hashable, Callable[[], StreamingStats]] = {},  # noqa: B006 - only read, as in Pyro
        default: Callable[[], StreamingStats] = CountStats,
    ) -> None:
        self.stats: dict[Hashable, StreamingStats] = defaultdict(default)
        self.stats.update({key: factory() for key, factory in types.items()})
        super().__init__()

    def update(self, sample: dict[Hashable, Any]) -> None:
        """Update the statistic of each key with its value.

        :param sample: a dict of values.
        """
        for key, value in sample.items():
            self.stats[key].update(value)

    def merge(self, other: StatsOfDict) -> StatsOfDict:
        """Per-key merges; a key seen by only one side keeps that side's statistic.

        :param other: another :class:`StatsOfDict`.
        """
        _check_same_type(self, other)
        result = copy.deepcopy(self)
        for key, stats in other.stats.items():
            mine = self.stats.get(key)
            result.stats[key] = copy.deepcopy(stats) if mine is None else mine.merge(stats)
        return result

    def get(self) -> dict[Hashable, Any]:
        """A dict of each key's statistic, with the keys of the samples."""
        return {key: stats.get() for key, stats in self.stats.items()}


class StackStats(StreamingStats):
    """All samples, stacked into one tensor along a new leftmost dim.

    >>> stats = StackStats()
    >>> stats.update(torch.tensor([1.0, 2.0])); stats.update(torch.tensor([3.0, 4.0]))
    >>> stats.get()["samples"]
    tensor([[1., 2.],
            [3., 4.]])
    """

    def __init__(self) -> None:
        self.samples: list[torch.Tensor] = []

    def update(self, sample: torch.Tensor) -> None:
        """Keep one more sample.

        :param sample: a tensor.
        """
        self.samples.append(_require_tensor(sample, "StackStats"))

    def merge(self, other: StackStats) -> StackStats:
        """The samples of ``self`` followed by those of ``other``.

        :param other: another :class:`StackStats`.
        """
        _check_same_type(self, other)
        result = StackStats()
        result.samples = self.samples + other.samples
        return result

    def get(self) -> dict[str, int | torch.Tensor]:
        """``{"count": n, "samples": stacked}``, or ``{"count": 0}`` before any sample."""
        if not self.samples:
            return {"count": 0}
        return {"count": len(self.samples), "samples": torch.stack(self.samples)}


class CountMeanStats(StreamingStats):
    """The number of samples and their running mean (of detached tensors).

    >>> stats = CountMeanStats()
    >>> stats.update(torch.tensor(1.0)); stats.update(torch.tensor(3.0))
    >>> stats.get()
    {'count': 2, 'mean': tensor(2.)}
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | float = 0.0
        super().__init__()

    def update(self, sample: torch.Tensor) -> None:
        """Fold one sample into the mean.

        :param sample: a tensor.
        """
        sample = _require_tensor(sample, "CountMeanStats").detach()
        self.count += 1
        self.mean = self.mean + (sample - self.mean) / self.count

    def merge(self, other: CountMeanStats) -> CountMeanStats:
        """The count and mean of both streams.

        :param other: another :class:`CountMeanStats`.
        """
        _check_same_type(self, other)
        result = CountMeanStats()
        result.count = self.count + other.count
        total = max(result.count, 1)
        result.mean = (self.count / total) * self.mean + (other.count / total) * other.mean
        return result

    def get(self) -> dict[str, int | torch.Tensor]:
        """``{"count": n, "mean": mean}``, or ``{"count": 0}`` before any sample."""
        if self.count == 0:
            return {"count": 0}
        return {"count": self.count, "mean": torch.as_tensor(self.mean)}


class CountMeanVarianceStats(StreamingStats):
    """The number of samples, their mean and their elementwise (unbiased) variance, by
    Welford's algorithm on detached tensors of a fixed shape; merges use Chan et al.'s
    pairwise update.

    >>> stats = CountMeanVarianceStats()
    >>> for x in [1.0, 2.0, 3.0]:
    ...     stats.update(torch.tensor([x, 2 * x]))
    >>> stats.get()
    {'count': 3, 'mean': tensor([2., 4.]), 'variance': tensor([1., 4.])}
    """

    def __init__(self) -> None:
        self.shape: torch.Size | None = None
        self.count = 0
        self._mean: torch.Tensor | float = 0.0
        self._sum_sq: torch.Tensor | float = 0.0
        super().__init__()

    def update(self, sample: torch.Tensor) -> None:
        """Fold one sample into the mean and variance.

        :param sample: a tensor of the same shape as every earlier sample.
        :raises AssertionError: if the shape differs from the first sample's.
        """
        sample = _require_tensor(sample, "CountMeanVarianceStats").detach()
        if self.shape is None:
            self.shape = sample.shape
        elif sample.shape != self.shape:
            raise AssertionError(
                f"CountMeanVarianceStats.update: sample shape {tuple(sample.shape)} differs from "
                f"the first sample's {tuple(self.shape)}"
            )
        self.count += 1
        before = sample - self._mean
        self._mean = self._mean + before / self.count
        self._sum_sq = self._sum_sq + before * (sample - self._mean)

    def merge(self, other: CountMeanVarianceStats) -> CountMeanVarianceStats:
        """The count, mean and variance of both streams.

        :param other: another :class:`CountMeanVarianceStats` of the same sample shape.
        """
        _check_same_type(self, other)
        if self.shape is None:
            return copy.deepcopy(other)
        if other.shape is None:
            return copy.deepcopy(self)
        result = copy.deepcopy(self)
        result.count = self.count + other.count
        left, right = self.count / result.count, other.count / result.count
        result._mean = left * self._mean + right * other._mean
        delta = torch.as_tensor(self._mean) - other._mean
        result._sum_sq = self._sum_sq + other._sum_sq + (self.count * other.count / result.count) * delta**2
        return result

    def get(self) -> dict[str, int | torch.Tensor]:
        """``{"count": n, "mean": mean, "variance": variance}``, or ``{"count": 0}`` before any
        sample.

        :raises RuntimeError: with a single sample, whose variance is undefined.
        """
        if self.shape is None:
            return {"count": 0}
        if self.count < 2:
            raise RuntimeError("Insufficient samples to estimate covariance")
        mean = torch.as_tensor(self._mean).reshape(self.shape)
        variance = (torch.as_tensor(self._sum_sq) / (self.count - 1)).reshape(self.shape)
        return {"count": self.count, "mean": mean, "variance": variance}
