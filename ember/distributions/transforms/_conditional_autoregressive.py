"""The base of the conditional affine and neural autoregressive flows."""

from __future__ import annotations

from typing import Any

import torch

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule


class _ConditionalAutoregressive(ConditionalTransformModule):
    """A conditional flow whose ``condition(c)`` is the flow on ``x -> nn(x, context=c)``.

    :param autoregressive_nn: a network ``f(x, context=c)``.
    :param kwargs: the flow's other arguments.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, autoregressive_nn: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__()
        self.nn = autoregressive_nn
        self.kwargs = kwargs
