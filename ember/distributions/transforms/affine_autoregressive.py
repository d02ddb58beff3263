"""Inverse autoregressive flow: an affine map whose shift and scale come from a MADE network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ember.distributions import constraints
from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms._conditional_autoregressive import _ConditionalAutoregressive
from ember.distributions.transforms.utils import _cache_matches, _check_last_dim, clamp_preserve_gradients, _ContextBound, _input_dim

__all__ = [
    "AffineAutoregressive",
    "ConditionalAffineAutoregressive",
    "affine_autoregressive",
    "conditional_affine_autoregressive",
]


class AffineAutoregressive(TransformModule):
    """The inverse autoregressive flow ``y = mu(x) + sigma(x) * x`` (Kingma et al., 2016).

    ``mu`` and ``log sigma`` come from an autoregressive network, so the Jacobian is
    triangular: ``log|det J| = sum(log sigma)``. The forward map (sampling) is one network
    pass; the inverse (scoring outside samples) takes ``D`` passes. With ``stable=True`` the
    map is ``y = sigma x + (1 - sigma) mu`` with ``sigma = sigmoid(logit + sigmoid_bias)``.

    :param autoregressive_nn: a network returning ``(mu, log_sigma)`` (or logits when stable),
        e.g. :class:`~ember.nn.AutoRegressiveNN`.
    :param log_scale_min_clip: the lower clip of ``log sigma`` (gradients pass through).
    :param log_scale_max_clip: the upper clip of ``log sigma``.
    :param sigmoid_bias: the bias added to the logits in the stable variant.
    :param stable: use the stable (gated) variant of Kingma et al.

    >>> from ember.nn import AutoRegressiveNN
    >>> flow = AffineAutoregressive(AutoRegressiveNN(3, [10]))
    >>> x = torch.randn(4, 3)
    >>> torch.allclose(flow.inv(flow(x)), x, atol=1e-5)
    True
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    sign = +1
    autoregressive = True

    def __init__(
        self,
        autoregressive_nn: Callable[..., Any],
        log_scale_min_clip: float = -5.0,
        log_scale_max_clip: float = 3.0,
        sigmoid_bias: float = 2.0,
        stable: bool = False,
    ) -> None:
        super().__init__(cache_size=1)
        self.arn = autoregressive_nn
        self._cached_log_scale: torch.Tensor | None = None
        self.log_scale_min_clip = log_scale_min_clip
        self.log_scale_max_clip = log_scale_max_clip
        self.sigmoid_bias = sigmoid_bias
        self.stable = stable

    def _clamp(self, log_scale: torch.Tensor) -> torch.Tensor:
        return clamp_preserve_gradients(log_scale, self.log_scale_min_clip, self.log_scale_max_clip)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(self, x, _input_dim(self.arn))
        mean: torch.Tensor
        raw: torch.Tensor
        mean, raw = self.arn(x)
        if self.stable:
            logit = raw + self.sigmoid_bias
            self._cached_log_scale = F.logsigmoid(logit)
            scale = torch.sigmoid(logit)
            return scale * x + (1 - scale) * mean
        log_scale = self._clamp(raw)
        self._cached_log_scale = log_scale
        return torch.addcmul(mean, torch.exp(log_scale), x)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        # Fixed-point sweep instead of Pyro's per-coordinate writes: after k passes the first k
        # coordinates in autoregressive order are exact, so D passes give the exact inverse,
        # with no indexing or stacking (faster; see bench/distributions_flows.py).
        _check_last_dim(self, y, _input_dim(self.arn), "y")
        x = torch.zeros_like(y)
        log_scale = y
        for _ in range(y.size(-1)):
            mean: torch.Tensor
            raw: torch.Tensor
            mean, raw = self.arn(x)
            if self.stable:
                inverse_scale = 1 + torch.exp(-raw - self.sigmoid_bias)
                x = inverse_scale * y + (1 - inverse_scale) * mean
            else:
                log_scale = self._clamp(raw)
                x = (y - mean) * torch.exp(-log_scale)
        self._cached_log_scale = F.logsigmoid(raw + self.sigmoid_bias) if self.stable else log_scale
        return x

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cached_log_scale is not None
        return self._cached_log_scale.sum(-1)


class ConditionalAffineAutoregressive(_ConditionalAutoregressive):
    """An :class:`AffineAutoregressive` whose network also reads a context.

    :param autoregressive_nn: a network ``f(x, context=c)`` returning ``(mu, log_sigma)``,
        e.g. :class:`~ember.nn.ConditionalAutoRegressiveNN`.
    :param kwargs: the other arguments of :class:`AffineAutoregressive`.
    """

    def __init__(self, autoregressive_nn: torch.nn.Module, **kwargs: Any) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(autoregressive_nn, **kwargs)

    def condition(self, context: torch.Tensor) -> AffineAutoregressive:
        """The :class:`AffineAutoregressive` for ``context``."""
        return AffineAutoregressive(_ContextBound(self.nn, context), **self.kwargs)


def affine_autoregressive(input_dim: int, hidden_dims: Sequence[int] | None = None, **kwargs: Any) -> AffineAutoregressive:
    """An :class:`AffineAutoregressive` on an :class:`~ember.nn.AutoRegressiveNN`.

    :param input_dim: the event size.
    :param hidden_dims: the hidden sizes (default ``[3 * input_dim + 1]``).
    :param kwargs: the other arguments of :class:`AffineAutoregressive`.
    """
    from ember.nn.auto_reg_nn import AutoRegressiveNN  # ember.nn sits above ember.distributions

    arn = AutoRegressiveNN(input_dim, [3 * input_dim + 1] if hidden_dims is None else hidden_dims)
    return AffineAutoregressive(arn, **kwargs)


def conditional_affine_autoregressive(
    input_dim: int, context_dim: int, hidden_dims: Sequence[int] | None = None, **kwargs: Any
) -> ConditionalAffineAutoregressive:
    """A :class:`ConditionalAffineAutoregressive` on a :class:`~ember.nn.ConditionalAutoRegressiveNN`.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default ``[10 * input_dim]``).
    :param kwargs: the other arguments of :class:`AffineAutoregressive`.
    """
    from ember.nn.auto_reg_nn import ConditionalAutoRegressiveNN  # ember.nn sits above ember.distributions

    arn = ConditionalAutoRegressiveNN(input_dim, context_dim, [10 * input_dim] if hidden_dims is None else hidden_dims)
    return ConditionalAffineAutoregressive(arn, **kwargs)
