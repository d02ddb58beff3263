"""Transforms with learnable parameters: a transform that is also a :class:`torch.nn.Module`.

>>> import torch
>>> from ember.distributions.transforms import Planar
>>> flow = ComposeTransformModule([Planar(2), Planar(2)])
>>> len(list(flow.parameters()))
6
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.distributions.transforms import ComposeTransform, Transform

__all__ = ["ComposeTransformModule", "TransformModule", "iterated"]


class TransformModule(Transform, torch.nn.Module):
    """A :class:`~torch.distributions.transforms.Transform` whose parameters are module parameters.

    Calling it runs the transform (with its cache); its parameters, buffers and ``train()``
    mode are the module's, so a flow can sit inside a guide or a :class:`torch.nn.Module`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def __hash__(self) -> int:
        # Transform defines __eq__ (which would drop the hash); modules hash by identity.
        return object.__hash__(self)


class ComposeTransformModule(ComposeTransform, torch.nn.ModuleList):
    """A :class:`~torch.distributions.transforms.ComposeTransform` that registers its module parts.

    :param parts: the transforms, applied left to right.
    :param cache_size: 0 or 1, as for every torch transform.
    """

    def __init__(self, parts: Sequence[Transform], cache_size: int = 0) -> None:
        super().__init__(list(parts), cache_size=cache_size)
        for part in parts:
            if isinstance(part, torch.nn.Module):
                self.append(part)

    def __hash__(self) -> int:
        return object.__hash__(self)

    def with_cache(self, cache_size: int = 1) -> ComposeTransformModule:
        if cache_size == self._cache_size:
            return self
        return ComposeTransformModule(self.parts, cache_size=cache_size)


def iterated(repeats: int, base_fn: Callable[..., Transform], *args: Any, **kwargs: Any) -> ComposeTransformModule:
    """Compose ``repeats`` independently built transforms ``base_fn(*args, **kwargs)``.

    :param repeats: how many transforms, at least 1.
    :param base_fn: builds one transform (e.g. :func:`~ember.distributions.transforms.planar`).
    :param args: positional arguments of ``base_fn``.
    :param kwargs: keyword arguments of ``base_fn``.
    """
    assert isinstance(repeats, int) and repeats >= 1
    return ComposeTransformModule([base_fn(*args, **kwargs) for _ in range(repeats)])
