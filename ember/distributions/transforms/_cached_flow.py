"""Bases of the planar and radial flows: three parameter tensors, an inverse only through the cache.

Both flows compute their log-Jacobian as a side value of the forward map and have no closed-form
inverse, so a value can be inverted (and scored) only while it is the one cached output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule
from ember.distributions.transforms.utils import _cache_matches

_FlowParams = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class _ConditionedCachedFlow(Transform):
    """A vector flow on ``params`` (three tensors, or a function returning them).

    A subclass's ``_call`` reads :meth:`_current_params` and stores ``_cached_logDetJ``.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, params: _FlowParams | Callable[[], _FlowParams]) -> None:
        super().__init__(cache_size=1)
        self._params = params
        self._cached_logDetJ: torch.Tensor | None = None

    def _current_params(self) -> _FlowParams:
        return self._params() if callable(self._params) else self._params

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise KeyError(f"{type(self).__name__} object expected to find key in intermediates cache but didn't")

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cached_logDetJ is not None
        return self._cached_logDetJ


class _ConditionalCachedFlow(ConditionalTransformModule):
    """A conditional vector flow whose network maps a context to the three parameter tensors."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, nn: Callable[..., Any]) -> None:
        super().__init__()
        self.nn = nn

    def _params(self, context: torch.Tensor) -> _FlowParams:
        first, second, third = self.nn(context)
        return first, second, third
