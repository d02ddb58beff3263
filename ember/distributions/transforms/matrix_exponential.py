"""Matrix-exponential flows (Hoogeboom et al., 2020): ``y = exp(M) x`` by a truncated series."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.conditional import ConditionalTransformModule
from ember.distributions.torch_transform import TransformModule

__all__ = [
    "ConditionalMatrixExponential",
    "ConditionedMatrixExponential",
    "MatrixExponential",
    "conditional_matrix_exponential",
    "matrix_exponential",
]


def _check_normalization(normalization: str) -> None:
    if normalization in ("weight", "spectral"):
        raise NotImplementedError("Normalization is currently not implemented.")
    if normalization != "none":
        raise ValueError(f"Unknown normalization method: {normalization}")


class ConditionedMatrixExponential(Transform):
    """``y = exp(M) x`` for a square ``M``, by ``iterations`` terms of the power series.

    The inverse is ``exp(-M) y`` and ``log|det J| = trace(M)``.

    :param weights: the ``(..., D, D)`` matrix ``M`` or a function returning it.
    :param iterations: the number of series terms after the identity.
    :param normalization: only ``"none"`` is implemented.
    :param bound: unused (Pyro's argument for the unimplemented normalizations).
    :raises NotImplementedError: for ``"weight"`` or ``"spectral"`` normalization.
    :raises ValueError: for another normalization.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(
        self,
        weights: torch.Tensor | Callable[[], torch.Tensor] | None = None,
        iterations: int = 8,
        normalization: str = "none",
        bound: float | None = None,
    ) -> None:
        super().__init__(cache_size=1)
        assert iterations > 0
        _check_normalization(normalization)
        self.weights = weights
        self.iterations = iterations
        self.normalization = normalization
        self.bound = bound

    def _matrix(self) -> torch.Tensor:
        matrix = self.weights() if callable(self.weights) else self.weights
        assert matrix is not None
        return matrix

    def _exp(self, x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        term = x.unsqueeze(-1)
        total = term
        for k in range(self.iterations):
            term = torch.matmul(M, term) / (k + 1)
            total = total + term
        return total.squeeze(-1)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return self._exp(x, self._matrix())

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._exp(y, -self._matrix())

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._matrix().diagonal(dim1=-2, dim2=-1).sum(-1)


class MatrixExponential(ConditionedMatrixExponential, TransformModule):
    """A matrix-exponential flow with a learnable ``D x D`` matrix ``weights``.

    :param input_dim: the event size ``D``.
    :param iterations: the number of series terms.
    :param normalization: only ``"none"`` is implemented.
    :param bound: unused.

    >>> flow = MatrixExponential(2)
    >>> x = torch.randn(3, 2)
    >>> torch.allclose(flow.inv(flow(x)), x, atol=1e-3)
    True
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, input_dim: int, iterations: int = 8, normalization: str = "none", bound: float | None = None) -> None:
        super().__init__(iterations=iterations, normalization=normalization, bound=bound)
        self.weights = nn.Parameter(torch.empty(input_dim, input_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the matrix uniformly in ``+-1/sqrt(D)``."""
        assert isinstance(self.weights, torch.Tensor)
        bound = 1.0 / math.sqrt(self.weights.size(0))
        with torch.no_grad():
            self.weights.uniform_(-bound, bound)


class ConditionalMatrixExponential(ConditionalTransformModule):
    """A matrix-exponential flow whose matrix a network computes from a context.

    :param input_dim: the event size ``D``.
    :param nn: a network of the context returning ``D * D`` entries.
    :param iterations: the number of series terms.
    :param normalization: only ``"none"`` is implemented.
    :param bound: unused.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(
        self, input_dim: int, nn: Callable[..., Any], iterations: int = 8, normalization: str = "none", bound: float | None = None
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.nn = nn
        self.iterations = iterations
        self.normalization = normalization
        self.bound = bound

    def condition(self, context: torch.Tensor) -> ConditionedMatrixExponential:
        """The :class:`ConditionedMatrixExponential` for ``context``."""

        def weights() -> torch.Tensor:
            flat: torch.Tensor = self.nn(context)
            return flat.view(flat.shape[:-1] + (self.input_dim, self.input_dim))

        return ConditionedMatrixExponential(weights, iterations=self.iterations, normalization=self.normalization, bound=self.bound)


def matrix_exponential(input_dim: int, iterations: int = 8, normalization: str = "none", bound: float | None = None) -> MatrixExponential:
    """A :class:`MatrixExponential` (Pyro's helper constructor).

    :param input_dim: the event size.
    :param iterations: the number of series terms.
    :param normalization: only ``"none"`` is implemented.
    :param bound: unused.
    """
    return MatrixExponential(input_dim, iterations=iterations, normalization=normalization, bound=bound)


def conditional_matrix_exponential(
    input_dim: int,
    context_dim: int,
    hidden_dims: Sequence[int] | None = None,
    iterations: int = 8,
    normalization: str = "none",
    bound: float | None = None,
) -> ConditionalMatrixExponential:
    """A :class:`ConditionalMatrixExponential` on a :class:`~ember.nn.DenseNN` of the context.

    :param input_dim: the event size.
    :param context_dim: the context size.
    :param hidden_dims: the hidden sizes (default two layers of ``10 * input_dim``).
    :param iterations: the number of series terms.
    :param normalization: only ``"none"`` is implemented.
    :param bound: unused.
    """
    from ember.nn.dense_nn import DenseNN  # ember.nn sits above ember.distributions

    hidden = [input_dim * 10, input_dim * 10] if hidden_dims is None else hidden_dims
    net = DenseNN(context_dim, hidden, param_dims=[input_dim * input_dim])
    return ConditionalMatrixExponential(input_dim, net, iterations=iterations, normalization=normalization, bound=bound)
