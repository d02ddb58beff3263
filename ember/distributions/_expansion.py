"""Shape bookkeeping for :class:`~ember.distributions.ExpandedDistribution`."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

__all__ = ["ExpansionPlan", "plan_expansion"]


class ExpansionPlan(NamedTuple):
    """How a base batch shape grows into a target batch shape.

    :param new_sizes: sizes of the added leading dimensions, right to left.
    :param interstitial: ``(dim, size)`` of base dimensions of size 1 that grow, right to left,
        with ``dim`` negative and counted within the batch shape.
    """

    new_sizes: tuple[int, ...]
    interstitial: tuple[tuple[int, int], ...]

    def sample(
        self,
        sample_fn: Callable[[torch.Size], torch.Tensor],
        sample_shape: torch.Size,
        batch_shape: torch.Size,
        event_shape: torch.Size,
    ) -> torch.Tensor:
        """Draw from the base with ``sample_fn`` and lay the draws out in the target shape.

        New dimensions and grown dimensions are drawn as extra sample dimensions, right to
        left, and the grown ones are then moved into place: the same layout as Pyro, so seeded
        draws agree with it.
        """
        draw_shape = sample_shape + self.new_sizes + tuple(s for _, s in self.interstitial)
        samples = sample_fn(draw_shape)
        first = len(sample_shape) + len(self.new_sizes)
        for offset, (dim, _) in enumerate(self.interstitial):
            samples = samples.transpose(dim - len(event_shape), first + offset)
        return samples.reshape(sample_shape + batch_shape + event_shape)


def plan_expansion(existing: torch.Size, target: torch.Size) -> ExpansionPlan:
    """Check that ``existing`` expands to ``target`` and say how.

    :param existing: the base batch shape.
    :param target: the expanded batch shape.
    :raises ValueError: if a base dimension is neither 1 nor the target size, or ``target`` is
        shorter than ``existing``.

    >>> plan_expansion(torch.Size([3, 1]), torch.Size([2, 3, 4]))
    ExpansionPlan(new_sizes=(2,), interstitial=((-1, 4),))
    """
    error = ValueError(f"Cannot broadcast distribution of shape {existing} to shape {target}")
    if len(target) < len(existing):
        raise error
    new_sizes: list[int] = []
    interstitial: list[tuple[int, int]] = []
    for position in range(1, len(target) + 1):
        size = target[-position]
        if position > len(existing):
            new_sizes.append(size)
        elif existing[-position] == 1 and size != 1:
            interstitial.append((-position, size))
        elif existing[-position] != size:
            raise error
    return ExpansionPlan(tuple(new_sizes), tuple(interstitial))
