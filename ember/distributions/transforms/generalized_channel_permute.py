"""Generalized channel permutations (Glow's invertible 1x1 convolution), in LU form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule
from ember.distributions.torch_transform import TransformModule

__all__ = [
    "ConditionalGeneralizedChannelPermute",
    "ConditionedGeneralizedChannelPermute",
    "GeneralizedChannelPermute",
    "conditional_generalized_channel_permute",
    "generalized_channel_permute",
]

_IMAGES = constraints.independent(constraints.real, 3)  # type: ignore[no-untyped-call]  # torch: unannotated


class ConditionedGeneralizedChannelPermute(Transform):
    """Mix the channels of ``(..., C, H, W)`` images by ``W = P L U`` at every pixel.

    ``P`` is a permutation matrix, ``L`` unit lower triangular and ``U`` upper triangular
    (``L`` and ``U`` share one ``LU`` tensor); ``log|det J| = H W sum log|U_ii|``.

    :param permutation: the ``C x C`` permutation matrix.
    :param LU: the packed ``(..., C, C)`` factors.
    """

    domain = _IMAGES
    codomain = _IMAGES
    bijective = True

    def __init__(self, permutation: torch.Tensor | None = None, LU: torch.Tensor | None = None) -> None:
        super().__init__(cache_size=1)
        self.permutation = permutation
        self.LU = LU

    def _lu(self) -> torch.Tensor:
        assert self.LU is not None
        return self.LU

    @property
    def U_diag(self) -> torch.Tensor:
        """The diagonal of ``U``."""
        return self._lu().diagonal(dim1=-2, dim2=-1)

    @property
    def L(self) -> torch.Tensor:
        """The unit lower-triangular factor."""
        lu = self._lu()
        return lu.tril(diagonal=-1) + torch.eye(lu.size(-1), dtype=lu.dtype, device=lu.device)

    @property
    def U(self) -> torch.Tensor:
        """The upper-triangular factor."""
        return self._lu().triu()

    def _perm(self) -> torch.Tensor:
        assert self.permutation is not None
        return self.permutation

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        # A batched matrix product rather than conv2d, so that filters may carry batch dims.
        filters = (self._perm() @ self.L @ self.U)[..., None, None]
        return (filters * x.unsqueeze(-4)).sum(-3)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        # Two triangular solves instead of inverting W (more stable).
        flat = y.flatten(start_dim=-2)
        lux = (flat.unsqueeze(-3) * self._perm().T.unsqueeze(-1)).sum(-2)
        ux = torch.linalg.solve_triangular(self.L, lux, upper=False)
        x: torch.Tensor = torch.linalg.solve_triangular(self.U, ux, upper=True)
        return x.reshape(x.shape[:-1] + y.shape[-2:])

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        log_det = height * width * self.U_diag.abs().log().sum(-1)
        return log_det * x.new_ones(x.shape[:-3])


class GeneralizedChannelPermute(ConditionedGeneralizedChannelPermute, TransformModule):
    """A learnable invertible ``1 x 1`` convolution, initialised at a random rotation.

    :param channels: the number of channels ``C``.
    :param permutation: the channel permutation (default: the LU pivots of the rotation).
    :raises ValueError: when the permutation does not have ``channels`` entries.

    >>> flow = GeneralizedChannelPermute(channels=3)
    >>> x = torch.randn(2, 3, 4, 4)
    >>> torch.allclose(flow.inv(flow(x)), x, atol=1e-4)
    True
    """

    domain = _IMAGES
    codomain = _IMAGES
    bijective = True

    def __init__(self, channels: int = 3, permutation: torch.Tensor | None = None) -> None:
        super().__init__()
        del self.permutation
        rotation, _ = torch.linalg.qr(torch.randn(channels, channels))
        lu, pivots = torch.linalg.lu_factor(rotation)
        if permutation is None:
            matrix, _, _ = torch.lu_unpack(lu, pivots)
        else:
            if len(permutation) != channels:
                raise ValueError(
                    f'GeneralizedChannelPermute: keyword argument "permutation" expected to have {channels} '
                    f"elements but {len(permutation)} found."
                )
            matrix = torch.eye(channels, channels)[permutation.to(torch.int64)]
        self.register_buffer("permutation", matrix)
        self.LU = torch.nn.Parameter(lu)


class ConditionalGeneralizedChannelPermute(ConditionalTransformModule):
    """A channel permutation whose ``LU`` factors a network computes from a context.

    :param nn: a network of the context returning ``C * C`` entries.
    :param channels: the number of channels ``C``.
    :param permutation: the channel permutation (default: random).
    """

    domain = _IMAGES
    codomain = _IMAGES
    bijective = True
    permutation: torch.Tensor

    def __init__(self, nn: Any, channels: int = 3, permutation: torch.Tensor | None = None) -> None:
        super().__init__()
        self.nn = nn
        self.channels = channels
        order = torch.randperm(channels) if permutation is None else permutation
        self.register_buffer("permutation", torch.eye(len(order), len(order))[order.to(torch.int64)])

    def condition(self, context: torch.Tensor) -> ConditionedGeneralizedChannelPermute:
        """The :class:`ConditionedGeneralizedChannelPermute` for ``context``."""
        lu: torch.Tensor = self.nn(context)
        return ConditionedGeneralizedChannelPermute(self.permutation, lu.view(lu.shape[:-1] + (self.channels, self.channels)))


def generalized_channel_permute(**kwargs: Any) -> GeneralizedChannelPermute:
    """A :class:`GeneralizedChannelPermute` (Pyro's helper constructor).

    :param kwargs: the arguments of :class:`GeneralizedChannelPermute`.
    """
    return GeneralizedChannelPermute(**kwargs)


def conditional_generalized_channel_permute(
    context_dim: int, channels: int = 3, hidden_dims: Sequence[int] | None = None
) -> ConditionalGeneralizedChannelPermute:
    """A :class:`ConditionalGeneralizedChannelPermute` on a :class:`~ember.nn.DenseNN` of the context.

    :param context_dim: the context size.
    :param channels: the number of channels.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * channels``).
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    hidden = [channels * 10, channels * 10] if hidden_dims is None else hidden_dims
    return ConditionalGeneralizedChannelPermute(DenseNN(context_dim, hidden, param_dims=[channels * channels]), channels)
