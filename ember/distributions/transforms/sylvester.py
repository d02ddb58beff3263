"""Sylvester flows (van den Berg et al., 2018) with Householder-orthogonal ``Q``."""

from __future__ import annotations

import torch
from torch import nn

from ember.distributions import constraints
from ember.distributions.transforms.householder import Householder
from ember.distributions.transforms.utils import _cache_matches, _check_last_dim

__all__ = ["Sylvester", "sylvester"]


class Sylvester(Householder):
    """``y = x + Q R tanh(S Q^T x + b)`` with ``R``, ``S`` upper triangular and ``Q`` orthogonal.

    ``Q`` is a product of Householder reflections and the diagonals of ``R`` and ``S`` pass
    through ``tanh``; the inverse has no closed form (only cached outputs can be inverted).
    The map is Pyro's, ``y = x + tanh(x S Q^T + b) Q R`` on row vectors. Its log-Jacobian
    is computed exactly, as ``slogdet(I + S Q^T diag(tanh') Q R)``: Pyro's closed form
    ``sum log(1 + tanh' R_ii S_ii)`` holds only for the paper's arrangement of the factors,
    so it agrees with this one only near the identity (Pyro's small initial weights).

    :param input_dim: the event size ``D``.
    :param count_transforms: the number of reflections forming ``Q``.

    >>> Sylvester(3)(torch.zeros(2, 3)).shape
    torch.Size([2, 3])
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    volume_preserving = False
    triangular_mask: torch.Tensor

    def __init__(self, input_dim: int, count_transforms: int = 1) -> None:
        super().__init__(input_dim, count_transforms)
        self.R_dense = nn.Parameter(torch.empty(input_dim, input_dim))
        self.S_dense = nn.Parameter(torch.empty(input_dim, input_dim))
        self.R_diag = nn.Parameter(torch.empty(input_dim))
        self.S_diag = nn.Parameter(torch.empty(input_dim))
        self.b = nn.Parameter(torch.empty(input_dim))
        self.register_buffer("triangular_mask", torch.triu(torch.ones(input_dim, input_dim), diagonal=1))
        self._cached_logDetJ: torch.Tensor | None = None
        self.reset_parameters2()

    def reset_parameters2(self) -> None:
        """Draw the triangular factors and the bias uniformly in ``+-0.01``."""
        with torch.no_grad():
            for value in (self.b, self.R_diag, self.S_diag, self.R_dense, self.S_dense):
                value.uniform_(-0.01, 0.01)

    def dtanh_dx(self, x: torch.Tensor) -> torch.Tensor:
        """The derivative of ``tanh`` at ``x``."""
        return 1.0 - torch.tanh(x).pow(2)

    def R(self) -> torch.Tensor:
        """The upper-triangular ``R``."""
        return self.R_dense * self.triangular_mask + torch.diag(torch.tanh(self.R_diag))

    def S(self) -> torch.Tensor:
        """The upper-triangular ``S``."""
        return self.S_dense * self.triangular_mask + torch.diag(torch.tanh(self.S_diag))

    def Q(self, x: torch.Tensor) -> torch.Tensor:
        """The orthogonal ``Q``, the product of the reflections."""
        u = self.u()
        eye = torch.eye(self.input_dim, dtype=x.dtype, device=x.device)
        product = eye - 2.0 * torch.outer(u[0], u[0])
        for k in range(1, u.size(-2)):
            product = product @ (eye - 2.0 * torch.outer(u[k], u[k]))
        return product

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(self, x, self.input_dim)
        Q, R, S = self.Q(x), self.R(), self.S()
        B, A = S @ Q.T, Q @ R
        preactivation = x @ B + self.b
        # dy/dx = I + B diag(tanh'(pre)) A, as a batch of D x D matrices.
        jacobian = torch.eye(self.input_dim, dtype=x.dtype, device=x.device) + (B * self.dtanh_dx(preactivation).unsqueeze(-2)) @ A
        self._cached_logDetJ = torch.linalg.slogdet(jacobian)[1]
        return x + torch.tanh(preactivation) @ A

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise KeyError("Sylvester object expected to find key in intermediates cache but didn't")

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _cache_matches(self, x, y):
            self(x)
        assert self._cached_logDetJ is not None
        return self._cached_logDetJ


def sylvester(input_dim: int, count_transforms: int | None = None) -> Sylvester:
    """A :class:`Sylvester` with ``input_dim // 2 + 1`` reflections unless told otherwise.

    :param input_dim: the event size.
    :param count_transforms: the number of reflections forming ``Q``.
    """
    return Sylvester(input_dim, count_transforms=input_dim // 2 + 1 if count_transforms is None else count_transforms)
