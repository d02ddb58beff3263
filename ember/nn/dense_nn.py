"""Fully connected hypernetworks for coupling and conditional flows (Pyro's ``pyro.nn.dense_nn``).

>>> import torch
>>> net = DenseNN(2, [8], param_dims=[1, 3])
>>> [p.shape for p in net(torch.randn(5, 2))]
[torch.Size([5, 1]), torch.Size([5, 3])]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ember.nn.auto_reg_nn import NetOutput, _ContextParamsNet

__all__ = ["ConditionalDenseNN", "DenseNN"]


class ConditionalDenseNN(_ContextParamsNet):
    """A multilayer perceptron of ``(x, context)`` whose output is split into parameters.

    :param input_dim: the size of ``x``.
    :param context_dim: the size of the context, concatenated before ``x``.
    :param hidden_dims: the hidden layer sizes.
    :param param_dims: the size of each returned parameter (one tensor when there is one).
    :param nonlinearity: the hidden activation (default ReLU).
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        hidden_dims: Sequence[int],
        param_dims: Sequence[int] = (1, 1),
        nonlinearity: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self._set_sizes(input_dim, context_dim, hidden_dims, param_dims)
        sizes = [input_dim + context_dim, *self.hidden_dims, self.output_multiplier]
        self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        self.f = nn.ReLU() if nonlinearity is None else nonlinearity

    def _forward(self, x: torch.Tensor) -> NetOutput:
        h = x
        *hidden, last = self.layers
        for layer in hidden:
            h = self.f(layer(h))
        h = last(h)
        assert isinstance(h, torch.Tensor)
        if self.output_multiplier == 1 or self.count_params == 1:
            return h
        return tuple(h[..., s] for s in self.param_slices)


class DenseNN(ConditionalDenseNN):
    """A multilayer perceptron whose output is split into parameters.

    :param input_dim: the input size.
    :param hidden_dims: the hidden layer sizes.
    :param param_dims: the size of each returned parameter.
    :param nonlinearity: the hidden activation (default ReLU).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        param_dims: Sequence[int] = (1, 1),
        nonlinearity: nn.Module | None = None,
    ) -> None:
        super().__init__(input_dim, 0, hidden_dims, param_dims=param_dims, nonlinearity=nonlinearity)

    def forward(self, x: torch.Tensor) -> NetOutput:  # type: ignore[override]  # no context, as in Pyro
        return self._forward(x)
