"""Expansion of distributions whose state is a few batch-shaped parameter tensors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import torch
from torch.types import _size

from ember.distributions._common import new_instance

__all__ = ["as_torch", "broadcast_parameters", "broadcast_tensors", "expand_parameters"]

_D = TypeVar("_D", bound=torch.distributions.Distribution)


def as_torch(dist: object) -> torch.distributions.Distribution:
    """``dist`` seen as the torch distribution every Ember distribution is at runtime.

    :param dist: an Ember (or torch) distribution.
    """
    assert isinstance(dist, torch.distributions.Distribution), type(dist)
    return dist


def broadcast_parameters(owner: str, **params: torch.Tensor | float) -> tuple[torch.Tensor, ...]:
    """Broadcast a distribution's parameters together, as ``broadcast_all`` does.

    :param owner: the distribution's name, for the error message.
    :param params: the parameters by name, in order.
    :raises RuntimeError: (torch's type) naming the distribution and every parameter's shape
        if they do not broadcast.
    """
    try:
        result: tuple[torch.Tensor, ...] = torch.distributions.utils.broadcast_all(*params.values())
    except RuntimeError:
        shapes = ", ".join(
            f"{name} {tuple(value.shape) if isinstance(value, torch.Tensor) else ()}"
            for name, value in params.items()
        )
        raise RuntimeError(f"{owner}: parameters {shapes} cannot be broadcast together") from None
    return result


def broadcast_tensors(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`torch.broadcast_tensors`, typed.

    :param tensors: the tensors to broadcast together.
    """
    result: tuple[torch.Tensor, ...] = torch.broadcast_tensors(*tensors)  # type: ignore[no-untyped-call]  # torch: unannotated
    return result


def expand_parameters(
    dist: _D,
    cls: type[torch.distributions.Distribution],
    instance: Any,
    batch_shape: _size,
    names: Iterable[str],
) -> _D:
    """The result of ``dist.expand(batch_shape)`` for a distribution of scalar parameters.

    Each attribute in ``names`` is expanded to ``batch_shape``; validation is not repeated
    but the setting is copied.

    :param dist: the distribution being expanded.
    :param cls: the class whose ``expand`` is running.
    :param instance: the instance a subclass's ``expand`` already allocated, if any.
    :param batch_shape: the new batch shape.
    :param names: the parameter attributes.
    """
    new: _D = new_instance(dist, cls, instance)
    shape = torch.Size(batch_shape)
    for name in names:
        setattr(new, name, getattr(dist, name).expand(shape))
    torch.distributions.Distribution.__init__(new, shape, dist.event_shape, validate_args=False)
    new._validate_args = dist._validate_args
    return new
