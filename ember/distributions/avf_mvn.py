"""A multivariate normal whose ``rsample`` gradients carry a learnable control variate."""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable
from torch.distributions import constraints
from torch.types import _size

from ember.distributions.torch_multivariate import MultivariateNormal

__all__ = ["AVFMultivariateNormal"]


class AVFMultivariateNormal(MultivariateNormal):
    """Multivariate normal with adaptive-velocity-field control variates in its gradients.

    Samples and densities are those of :class:`~ember.distributions.MultivariateNormal`. The
    gradient of ``rsample`` with respect to ``scale_tril`` adds infinitesimal rotations
    parameterized by ``control_var``; they leave the gradient unbiased, and ``control_var``
    receives the gradient of the estimator's variance-relevant part, so an optimizer can adapt
    it alongside ``loc`` and ``scale_tril`` to reduce gradient variance.

    :param loc: the mean, a vector of size ``D``.
    :param scale_tril: the ``D x D`` lower Cholesky factor of the covariance.
    :param control_var: a ``2 x L x D`` tensor parameterizing the control variate.
    :raises ValueError: if the shapes are not as above.

    >>> d = AVFMultivariateNormal(torch.zeros(2), torch.eye(2), torch.zeros(2, 1, 2))
    >>> d.rsample((3,)).shape
    torch.Size([3, 2])
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale_tril": constraints.lower_triangular,
        "control_var": constraints.real,
    }

    def __init__(
        self, loc: torch.Tensor, scale_tril: torch.Tensor, control_var: torch.Tensor
    ) -> None:
        if loc.dim() != 1:
            raise ValueError("AVFMultivariateNormal loc must be 1-dimensional")
        if scale_tril.dim() != 2:
            raise ValueError("AVFMultivariateNormal scale_tril must be 2-dimensional")
        if control_var.dim() != 3 or control_var.size(0) != 2 or control_var.size(2) != loc.size(0):
            raise ValueError(
                "control_var should be of size 2 x L x D, where D is the dimension of the "
                f"location parameter loc; got control_var of shape {tuple(control_var.shape)} "
                f"and loc of shape {tuple(loc.shape)}"
            )
        self.control_var = control_var
        super().__init__(loc, scale_tril=scale_tril)

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw ``loc + scale_tril @ white`` with control-variate gradients.

        :param sample_shape: the shape of independent draws.
        """
        shape = torch.Size(sample_shape) + self.loc.shape
        result: torch.Tensor = _AVFSample.apply(  # type: ignore[no-untyped-call]  # torch: unannotated
            self.loc, self.scale_tril, self.control_var, shape)
        return result


class _AVFSample(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        loc: torch.Tensor,
        scale_tril: torch.Tensor,
        control_var: torch.Tensor,
        shape: torch.Size,
    ) -> torch.Tensor:
        white = torch.randn(shape, dtype=loc.dtype, device=loc.device)
        ctx.save_for_backward(scale_tril, control_var, white)
        return loc + white @ scale_tril.mT

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_output: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        tril, control_var, white = ctx.saved_tensors
        size = tril.size(0)
        g = grad_output.reshape(-1, size)
        eps = white.reshape(-1, size)
        left, right = control_var[0], control_var[1]  # each L x D
        # The reparameterization gradient, then a rotation xi weighted by sum_l B_l C_l^T.
        outer = (g @ tril).mT @ eps
        rotation = outer - outer.mT
        grad_tril = torch.tril(g.mT @ eps + rotation * (left.mT @ right))
        weighted = grad_tril * rotation
        grad_left = right @ weighted.mT
        grad_right = left @ weighted
        return g.sum(0), grad_tril, torch.stack([grad_left, grad_right]), None
