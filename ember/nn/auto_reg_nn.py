"""Masked autoencoders for autoregressive flows (MADE), at Pyro's ``pyro.nn.auto_reg_nn``.

Output ``j`` of an :class:`AutoRegressiveNN` depends only on the inputs that come before
input ``j`` in ``permutation``: the masks give every hidden unit a degree and connect a unit
only to units of lower (or, hidden to hidden, equal) degree.

>>> import torch
>>> arn = AutoRegressiveNN(3, [10], permutation=torch.tensor([2, 0, 1]))
>>> mean, log_scale = arn(torch.randn(5, 3))
>>> mean.shape
torch.Size([5, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from ember._util import warn_at_caller

__all__ = [
    "AutoRegressiveNN",
    "ConditionalAutoRegressiveNN",
    "MaskedLinear",
    "create_mask",
    "sample_mask_indices",
]

#: What a network of this module returns: one tensor, or one per entry of ``param_dims``.
NetOutput = torch.Tensor | tuple[torch.Tensor, ...]


def sample_mask_indices(input_dim: int, hidden_dim: int, simple: bool = True) -> torch.Tensor:
    """The degrees of ``hidden_dim`` hidden units, spread evenly over ``1..input_dim``.

    :param input_dim: the largest degree.
    :param hidden_dim: the number of hidden units.
    :param simple: round to the nearest degree; otherwise round up or down at random, in
        proportion to the distance.
    """
    degrees = torch.linspace(1, input_dim, steps=hidden_dim)
    if simple:
        return torch.round(degrees)
    floor = degrees.floor()
    return floor + torch.bernoulli(degrees - floor)


def create_mask(
    input_dim: int,
    context_dim: int,
    hidden_dims: Sequence[int],
    permutation: torch.Tensor,
    output_dim_multiplier: int,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The connectivity masks of a MADE network, and the mask of its input-to-output skip layer.

    Context inputs have degree 0 (every unit may see them); input ``i`` has degree one plus
    its position in ``permutation``.

    :param input_dim: the number of autoregressive inputs.
    :param context_dim: the number of context inputs, prepended to them.
    :param hidden_dims: the sizes of the hidden layers.
    :param permutation: the order of the inputs.
    :param output_dim_multiplier: the number of outputs per input.
    :returns: one ``(out, in)`` mask per layer, and the skip mask.
    """
    dtype = torch.get_default_dtype()
    rank = torch.empty(permutation.shape, dtype=dtype)
    rank[permutation] = torch.arange(input_dim, dtype=dtype)
    input_degrees = torch.cat([torch.zeros(context_dim, dtype=dtype), rank + 1])
    if context_dim > 0:
        hidden_degrees = [sample_mask_indices(input_dim, h) - 1 for h in hidden_dims]
    else:
        hidden_degrees = [sample_mask_indices(input_dim - 1, h) for h in hidden_dims]
    output_degrees = (rank + 1).repeat(output_dim_multiplier)

    def connect(out_degrees: torch.Tensor, in_degrees: torch.Tensor, strict: bool) -> torch.Tensor:
        outgoing, incoming = out_degrees.unsqueeze(-1), in_degrees.unsqueeze(0)
        return (outgoing > incoming if strict else outgoing >= incoming).to(dtype)

    masks = [connect(hidden_degrees[0], input_degrees, strict=False)]
    masks += [connect(hidden_degrees[i], hidden_degrees[i - 1], strict=False) for i in range(1, len(hidden_dims))]
    masks.append(connect(output_degrees, hidden_degrees[-1], strict=True))
    return masks, connect(output_degrees, input_degrees, strict=True)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 ``mask`` (a buffer).

    :param in_features: the input size.
    :param out_features: the output size.
    :param mask: the ``(out_features, in_features)`` mask.
    :param bias: whether the layer has a bias.
    """

    mask: torch.Tensor

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", mask.detach())

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.weight * self.mask, self.bias)


def _param_slices(param_dims: Sequence[int]) -> list[slice]:
    slices, start = [], 0
    for size in param_dims:
        slices.append(slice(start, start + size))
        start += size
    return slices


class _ContextParamsNet(nn.Module):
    """A network of ``x`` (and a context, concatenated before it) whose output is split into
    parameters of sizes ``param_dims``: what the dense and the autoregressive networks share."""

    def _set_sizes(self, input_dim: int, context_dim: int, hidden_dims: Sequence[int], param_dims: Sequence[int]) -> None:
        self.input_dim = input_dim
        self.context_dim = context_dim
        self.hidden_dims = list(hidden_dims)
        self.param_dims = list(param_dims)
        self.count_params = len(self.param_dims)
        self.output_multiplier = sum(self.param_dims)
        self.param_slices = _param_slices(self.param_dims)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> NetOutput:
        context = context.expand(x.shape[:-1] + context.shape[-1:])
        return self._forward(torch.cat([context, x], dim=-1))

    def _forward(self, x: torch.Tensor) -> NetOutput:
        raise NotImplementedError


class ConditionalAutoRegressiveNN(_ContextParamsNet):
    """A MADE network whose outputs may also depend on a context vector.

    :param input_dim: the number of autoregressive inputs ``D``.
    :param context_dim: the size of the context.
    :param hidden_dims: the hidden layer sizes, each at least ``input_dim``.
    :param param_dims: the number of outputs per input for each returned parameter; e.g.
        ``[1, 1]`` returns two ``(..., D)`` tensors, ``[8, 8]`` two ``(..., 8, D)`` tensors.
    :param permutation: the autoregressive order of the inputs (default: random).
    :param skip_connections: add a masked linear layer from the inputs to the outputs.
    :param nonlinearity: the hidden activation (default ReLU).
    :raises ValueError: when a hidden layer is narrower than ``input_dim``.
    """

    permutation: torch.Tensor

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        hidden_dims: Sequence[int],
        param_dims: Sequence[int] = (1, 1),
        permutation: torch.Tensor | None = None,
        skip_connections: bool = False,
        nonlinearity: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if input_dim == 1:
            warn_at_caller(
                f"{type(self).__name__} input_dim = 1. Consider using an affine transformation instead.",
            )
        for size in hidden_dims:
            if size < input_dim:
                raise ValueError(
                    f"{type(self).__name__}: hidden dimension must not be less than input dimension, "
                    f"got hidden_dims={list(hidden_dims)} with input_dim={input_dim}"
                )
        self._set_sizes(input_dim, context_dim, hidden_dims, param_dims)
        self.all_ones = all(size == 1 for size in self.param_dims)
        order = torch.randperm(input_dim) if permutation is None else permutation.to(torch.int64)
        self.register_buffer("permutation", order)
        self.masks, self.mask_skip = create_mask(
            input_dim, context_dim, self.hidden_dims, self.permutation, self.output_multiplier
        )
        sizes = [input_dim + context_dim, *self.hidden_dims, input_dim * self.output_multiplier]
        self.layers = nn.ModuleList(MaskedLinear(sizes[i], sizes[i + 1], mask) for i, mask in enumerate(self.masks))
        self.skip_layer: MaskedLinear | None = None
        if skip_connections:
            self.skip_layer = MaskedLinear(sizes[0], sizes[-1], self.mask_skip, bias=False)
        self.f = nn.ReLU() if nonlinearity is None else nonlinearity

    def get_permutation(self) -> torch.Tensor:
        """The autoregressive order of the inputs."""
        return self.permutation

    def _forward(self, x: torch.Tensor) -> NetOutput:
        h = x
        *hidden, last = self.layers
        # The default ReLU runs in place on each fresh layer output (one allocation less a layer).
        inplace_relu = type(self.f) is nn.ReLU
        for layer in hidden:
            h = layer(h).relu_() if inplace_relu else self.f(layer(h))
        h = last(h)
        assert isinstance(h, torch.Tensor)
        if self.skip_layer is not None:
            h = h + self.skip_layer(x)
        if self.output_multiplier == 1:
            return h
        h = h.reshape(x.shape[:-1] + (self.output_multiplier, self.input_dim))
        if self.count_params == 1:
            return h
        if self.all_ones:
            return tuple(h.unbind(-2))
        return tuple(h[..., s, :] for s in self.param_slices)


class AutoRegressiveNN(ConditionalAutoRegressiveNN):
    """A MADE network: output ``j`` depends only on the inputs before ``j`` in ``permutation``.

    :param input_dim: the number of inputs ``D``.
    :param hidden_dims: the hidden layer sizes, each at least ``input_dim``.
    :param param_dims: the number of outputs per input for each returned parameter.
    :param permutation: the autoregressive order (default: random).
    :param skip_connections: add a masked linear layer from the inputs to the outputs.
    :param nonlinearity: the hidden activation (default ReLU).
    :raises ValueError: when a hidden layer is narrower than ``input_dim``.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        param_dims: Sequence[int] = (1, 1),
        permutation: torch.Tensor | None = None,
        skip_connections: bool = False,
        nonlinearity: nn.Module | None = None,
    ) -> None:
        super().__init__(
            input_dim,
            0,
            hidden_dims,
            param_dims=param_dims,
            permutation=permutation,
            skip_connections=skip_connections,
            nonlinearity=nonlinearity,
        )

    def forward(self, x: torch.Tensor) -> NetOutput:  # type: ignore[override]  # no context, as in Pyro
        return self._forward(x)
