"""Neural autoregressive flows (Huang et al., 2018): a monotone one-layer network per coordinate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ember.distributions import constraints
from ember.distributions.torch_transform import TransformModule
from ember.distributions.transforms._conditional_autoregressive import _ConditionalAutoregressive
from ember.distributions.transforms.block_autoregressive import _activation
from ember.distributions.transforms.utils import _cache_matches, _check_last_dim, _ContextBound, _input_dim

__all__ = [
    "ConditionalNeuralAutoregressive",
    "NeuralAutoregressive",
    "conditional_neural_autoregressive",
    "neural_autoregressive",
]


class NeuralAutoregressive(TransformModule):
    """``y_i = T^{-1}(sum_k w_k T(a_k x_i + b_k))`` with ``(a, w, b)`` from a MADE network of ``x_<i``.

    ``a = softplus(.) > 0`` and ``w = softmax(.)`` make each coordinate monotone; the inverse
    has no closed form, so only cached outputs can be inverted.

    :param autoregressive_nn: a network returning ``(A, W, b)``, each ``(..., hidden_units, D)``.
    :param hidden_units: the width of each coordinate's network.
    :param activation: ``"ELU"``, ``"LeakyReLU"``, ``"sigmoid"`` or ``"tanh"``.
    :raises ValueError: for an unknown activation.

    >>> from ember.nn import AutoRegressiveNN
    >>> flow = NeuralAutoregressive(AutoRegressiveNN(2, [10], param_dims=[16] * 3))
    >>> flow(torch.zeros(3, 2)).shape
    torch.Size([3, 2])
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    eps = 1e-8
    autoregressive = True

    def __init__(self, autoregressive_nn: Callable[..., Any], hidden_units: int = 16, activation: str = "sigmoid") -> None:
        super().__init__(cache_size=1)
        self.T = _activation("NeuralAutoregressive", activation)
        self.arn = autoregressive_nn
        self.hidden_units = hidden_units
        self._cached: tuple[torch.Tensor, ...] | None = None

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(self, x, _input_dim(self.arn))
        raw_a: torch.Tensor
        raw_w: torch.Tensor
        b: torch.Tensor
        raw_a, raw_w, b = self.arn(x)
        a = F.softplus(raw_a)
        c = a * x.unsqueeze(-2) + b
        t_c = self.T(c)
        d = (F.softmax(raw_w, dim=-2) * t_c).sum(dim=-2)
        y = self.T.inv(d)
        log_dy_dd: torch.Tensor = self.T.inv.log_abs_det_jacobian(d, y)  # type: ignore[no-untyped-call]  # torch: unannotated
        self._cached = (log_dy_dd, a, raw_w, c, t_c)
        output: torch.Tensor = y
        return output

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise KeyError("NeuralAutoregressive object expected to find key in intermediates cache but didn't")

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y) or self._cached is None:
            self(x)
        assert self._cached is not None
        log_dy_dd, a, raw_w, c, t_c = self._cached
        log_act: torch.Tensor = self.T.log_abs_det_jacobian(c, t_c)  # type: ignore[no-untyped-call]  # torch: unannotated
        log_dd_dx = torch.logsumexp(torch.log(a + self.eps) + F.log_softmax(raw_w, dim=-2) + log_act, dim=-2)
        return (log_dy_dd + log_dd_dx).sum(-1)


class ConditionalNeuralAutoregressive(_ConditionalAutoregressive):
    """A :class:`NeuralAutoregressive` whose network also reads a context.

    :param autoregressive_nn: a network ``f(x, context=c)`` returning ``(A, W, b)``.
    :param kwargs: the other arguments of :class:`NeuralAutoregressive`.
    """

    def __init__(self, autoregressive_nn: torch.nn.Module, **kwargs: Any) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(autoregressive_nn, **kwargs)

    def condition(self, context: torch.Tensor) -> NeuralAutoregressive:
        """The :class:`NeuralAutoregressive` for ``context``."""
        return NeuralAutoregressive(_ContextBound(self.nn, context), **self.kwargs)


def neural_autoregressive(
    input_dim: int, hidden_dims: Sequence[int] | None = None, activation: str = "sigmoid", width: int = 16
) -> NeuralAutoregressive:
    """A :class:`NeuralAutoregressive` on an :class:`~ember.nn.AutoRegressiveNN`.

    :param input_dim: the event size.
    :param hidden_dims: the hidden sizes (default ``[3 * input_dim + 1]``).
    :param activation: the activation of each coordinate's network.
    :param width: the width of each coordinate's network.
    """
    from ember.nn.auto_reg_nn import AutoRegressiveNN  # ember.nn sits above ember.distributions

    arn = AutoRegressiveNN(input_dim, [3 * input_dim + 1] if hidden_dims is None else hidden_dims, param_dims=[width] * 3)
    return NeuralAutoregressive(arn, hidden_units=width, activation=activation)


def conditional_neural_autoregressive(
    input_dim: int, context_dim: int, hidden_dims: Sequence[int] | None = None, activation: str = "sigmoid", width: int = 16
) -> ConditionalNeuralAutoregressive:
    """A :class:`ConditionalNeuralAutoregressive` on a :class:`~ember.nn.ConditionalAutoRegressiveNN`.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default ``[3 * input_dim + 1]``).
    :param activation: the activation of each coordinate's network.
    :param width: the width of each coordinate's network.
    """
    from ember.nn.auto_reg_nn import ConditionalAutoRegressiveNN  # ember.nn sits above ember.distributions

    hidden = [3 * input_dim + 1] if hidden_dims is None else hidden_dims
    arn = ConditionalAutoRegressiveNN(input_dim, context_dim, hidden, param_dims=[width] * 3)
    return ConditionalNeuralAutoregressive(arn, hidden_units=width, activation=activation)
