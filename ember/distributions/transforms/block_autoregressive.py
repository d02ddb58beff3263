"""Block neural autoregressive flows (De Cao et al., 2019)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.distributions.transforms import SigmoidTransform, TanhTransform, Transform

from ember.distributions import constraints
from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms.basic import ELUTransform, LeakyReLUTransform
from ember.distributions.transforms.utils import _cache_matches, _check_last_dim

__all__ = ["BlockAutoregressive", "MaskedBlockLinear", "block_autoregressive", "log_matrix_product"]

_EPS = 1e-8
_ACTIVATIONS: dict[str, type[Transform]] = {
    "ELU": ELUTransform,
    "LeakyReLU": LeakyReLUTransform,
    "sigmoid": SigmoidTransform,
    "tanh": TanhTransform,
}


def _activation(name: str, activation: str) -> Transform:
    if activation not in _ACTIVATIONS:
        raise ValueError(f'{name}: invalid activation function "{activation}", expected one of {sorted(_ACTIVATIONS)}')
    return _ACTIVATIONS[activation]()


def log_matrix_product(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``log(exp(A) @ exp(B))`` computed stably with logsumexp.

    :param A: a batch of ``(..., n, k)`` log-matrices.
    :param B: a batch of ``(..., k, m)`` log-matrices.
    """
    return torch.logsumexp(A.unsqueeze(-1) + B.unsqueeze(-3), dim=-2)


class MaskedBlockLinear(torch.nn.Module):
    """A block lower-triangular linear layer with positive (exp) diagonal blocks, weight-normalised.

    :param in_features: the input size, a multiple of ``dim``.
    :param out_features: the output size, a multiple of ``dim``.
    :param dim: the number of blocks.
    :param bias: whether the layer has a bias.
    """

    mask_d: torch.Tensor
    mask_o: torch.Tensor

    def __init__(self, in_features: int, out_features: int, dim: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features, self.dim = in_features, out_features, dim
        out_block, in_block = out_features // dim, in_features // dim
        weight = torch.zeros(out_features, in_features)
        for i in range(dim):
            weight[i * out_block : (i + 1) * out_block, 0 : (i + 1) * in_block] = torch.nn.init.xavier_uniform_(
                torch.empty(out_block, (i + 1) * in_block)
            )
        self._weight = torch.nn.Parameter(weight)
        self._diag_weight = torch.nn.Parameter(torch.nn.init.uniform_(torch.empty(out_features, 1)).log())
        self.bias: torch.Tensor | float = (
            torch.nn.Parameter(torch.nn.init.uniform_(torch.empty(out_features), -1 / math.sqrt(out_features), 1 / math.sqrt(out_features)))
            if bias
            else 0
        )
        self.register_buffer("mask_d", torch.eye(dim).unsqueeze(-1).repeat(1, out_block, in_block).view(out_features, in_features))
        lower = torch.tril(torch.ones(dim, dim), diagonal=-1).unsqueeze(-1)
        self.register_buffer("mask_o", lower.repeat(1, out_block, in_block).view(out_features, in_features))

    def get_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight matrix and the log of its diagonal blocks, ``(dim, out/dim, in/dim)``."""
        w = torch.exp(self._weight) * self.mask_d + self._weight * self.mask_o
        squared_norm = w.pow(2).sum(-1, keepdim=True)
        w = self._diag_weight.exp() * w / (squared_norm.sqrt() + _EPS)
        log_diagonal = self._diag_weight + self._weight - 0.5 * torch.log(squared_norm + _EPS)
        blocks = log_diagonal[self.mask_d.bool()].view(self.dim, self.out_features // self.dim, self.in_features // self.dim)
        return w, blocks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, blocks = self.get_weights()
        bias = self.bias.unsqueeze(-1) if isinstance(self.bias, torch.Tensor) else self.bias
        return (torch.matmul(w, x) + bias).squeeze(-1), blocks


class BlockAutoregressive(TransformModule):
    """A block neural autoregressive flow: a monotone masked network per coordinate.

    The inverse has no closed form; only cached outputs can be inverted.

    :param input_dim: the event size ``D``.
    :param hidden_factors: each hidden layer has ``D * factor`` units.
    :param activation: ``"ELU"``, ``"LeakyReLU"``, ``"sigmoid"`` or ``"tanh"``.
    :param residual: ``None``, ``"normal"`` (``y + x``) or ``"gated"``.
    :raises ValueError: for a factor below 1, or an unknown activation or residual.

    >>> BlockAutoregressive(2)(torch.zeros(3, 2)).shape
    torch.Size([3, 2])
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    autoregressive = True

    def __init__(
        self, input_dim: int, hidden_factors: Sequence[int] = (8, 8), activation: str = "tanh", residual: str | None = None
    ) -> None:
        super().__init__(cache_size=1)
        if any(h < 1 for h in hidden_factors):
            raise ValueError(f"BlockAutoregressive: hidden factors, {list(hidden_factors)}, must all be >= 1")
        if residual not in (None, "normal", "gated"):
            raise ValueError(f'BlockAutoregressive: invalid value {residual} for keyword argument "residual"')
        self.T = _activation("BlockAutoregressive", activation)
        self.residual = residual
        self.input_dim = input_dim
        sizes = [input_dim, *(input_dim * h for h in hidden_factors), input_dim]
        self.layers = torch.nn.ModuleList(MaskedBlockLinear(sizes[i], sizes[i + 1], input_dim) for i in range(len(sizes) - 1))
        self._cached_logDetJ: torch.Tensor | None = None
        if residual == "gated":
            self.gate = torch.nn.Parameter(torch.nn.init.normal_(torch.empty(1)))

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(self, x, self.input_dim)
        y = x
        log_det: torch.Tensor | None = None
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            pre_activation, log_weight = layer(y.unsqueeze(-1))
            log_det = log_weight if log_det is None else log_matrix_product(log_weight, log_det)
            if i < last:
                y = self.T(pre_activation)
                shape = x.shape + (-1, 1)
                log_act: torch.Tensor = self.T.log_abs_det_jacobian(pre_activation.view(shape), y.view(shape))  # type: ignore[no-untyped-call]  # torch: unannotated
                log_det = log_det + log_act
            else:
                y = pre_activation
        assert log_det is not None
        log_det = log_det.squeeze(-1).squeeze(-1)
        if self.residual == "normal":
            y = y + x
            log_det = F.softplus(log_det)
        elif self.residual == "gated":
            gate = self.gate.sigmoid()
            y = gate * x + (1.0 - gate) * y
            log_gate = torch.log(gate + _EPS)
            log_det = log_gate + F.softplus(torch.log1p(_EPS - gate) - log_gate + log_det)
        self._cached_logDetJ = log_det
        return y

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise KeyError("BlockAutoregressive object expected to find key in intermediates cache but didn't")

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cached_logDetJ is not None
        return self._cached_logDetJ.sum(-1)


def block_autoregressive(input_dim: int, **kwargs: Any) -> BlockAutoregressive:
    """A :class:`BlockAutoregressive` (Pyro's helper constructor).

    :param input_dim: the event size.
    :param kwargs: the other arguments of :class:`BlockAutoregressive`.
    """
    return BlockAutoregressive(input_dim, **kwargs)
