"""Helpers shared by the flows (Pyro's ``pyro.distributions.transforms.utils``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["clamp_preserve_gradients"]


def clamp_preserve_gradients(x: torch.Tensor, min: float, max: float) -> torch.Tensor:
    """Clamp ``x`` to ``[min, max]`` in value while passing gradients through unchanged.

    :param x: the tensor.
    :param min: the lower bound.
    :param max: the upper bound.

    >>> x = torch.tensor([-9.0, 0.5, 9.0], requires_grad=True)
    >>> y = clamp_preserve_gradients(x, -1.0, 1.0)
    >>> y.sum().backward()
    >>> y.detach(), x.grad
    (tensor([-1.0000,  0.5000,  1.0000]), tensor([1., 1., 1.]))
    """
    return x + (x.clamp(min, max) - x).detach()


class _StatelessTransformMixin:
    """Equality for transforms without parameters: all instances of a class are equal."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class _ContextBound:
    """A conditional network with its context fixed: ``bound(x) == net(x, context=context)``.

    Keeps the network's ``permutation`` visible, as autoregressive transforms read it.
    """

    def __init__(self, net: Callable[..., Any], context: torch.Tensor) -> None:
        self.func = net
        self.context = context

    def __call__(self, *args: torch.Tensor) -> Any:
        return self.func(*args, context=self.context)

    @property
    def permutation(self) -> torch.Tensor:
        permutation: torch.Tensor = getattr(self.func, "permutation")
        return permutation

    def get_permutation(self) -> torch.Tensor:
        return self.permutation


def _check_last_dim(transform: object, x: torch.Tensor, size: int | None, argument: str = "x") -> None:
    """Raise torch's error type (``RuntimeError``) naming the transform for a mis-sized event."""
    if size is not None and (x.dim() == 0 or x.size(-1) != size):
        raise RuntimeError(
            f"{type(transform).__name__}: expected {argument} with event size {size} in its last dim, "
            f"got shape {tuple(x.shape)}"
        )


def _input_dim(net: object) -> int | None:
    """The input size an (autoregressive) network declares, if it does."""
    size = getattr(getattr(net, "func", net), "input_dim", None)
    return size if isinstance(size, int) else None


def _cache_matches(transform: object, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether ``(x, y)`` is the pair in the transform's one-slot cache (so its side values are current)."""
    cached: tuple[object, object] = getattr(transform, "_cached_x_y", (None, None))
    return x is cached[0] and y is cached[1]
