"""Batched Newton steps for small-dimensional minimization, with an optional trust region.

The updated point of a converged Newton iteration stays differentiable with respect to the
loss's parameters even if earlier iterates were detached (the step has quadratic
convergence; Christianson, 1994), so these steps suit Laplace approximations
``MultivariateNormal(mode, cov)`` with ``cov`` the returned inverse Hessian. Detach results
between steps inside an optimization loop, or backprop runs through every step.
"""

from __future__ import annotations

import torch
from torch.autograd import grad

from ember._util import warn_if_nan
from ember.ops.linalg import eig_3d, rinverse

__all__ = ["newton_step", "newton_step_1d", "newton_step_2d", "newton_step_3d"]


def newton_step(
    loss: torch.Tensor, x: torch.Tensor, trust_radius: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Newton step minimizing ``loss`` over a batch of points ``x`` of size 1, 2 or 3.

    :param loss: a scalar, twice differentiable in ``x``; independent across the batch.
    :param x: the current points, shape ``batch_shape + (D,)``.
    :param trust_radius: if given, the step keeps each point within this distance.
    :returns: ``(mode, cov)``: the new points (shape of ``x``) and the inverse Hessians
        (shape ``batch_shape + (D, D)``).
    :raises ValueError: if ``x`` has no dims.
    :raises NotImplementedError: if ``D > 3``.

    >>> x = torch.zeros(2, requires_grad=True)
    >>> mode, cov = newton_step(((x - torch.tensor([1.0, -2.0])) ** 2).sum(), x)
    >>> mode.tolist()
    [1.0, -2.0]
    """
    if x.dim() < 1:
        raise ValueError(f"Expected x to have at least one dimension, actual shape {x.shape}")
    dim = x.shape[-1]
    if dim == 1:
        return newton_step_1d(loss, x, trust_radius)
    if dim == 2:
        return newton_step_2d(loss, x, trust_radius)
    if dim == 3:
        return newton_step_3d(loss, x, trust_radius)
    raise NotImplementedError("newton_step_nd is not implemented")


def _check(loss: torch.Tensor, x: torch.Tensor, size: int) -> None:
    if loss.shape != ():
        raise ValueError(f"Expected loss to be a scalar, actual shape {loss.shape}")
    if x.dim() < 1 or x.shape[-1] != size:
        raise ValueError(f"Expected x to have rightmost size {size}, actual shape {x.shape}")


def newton_step_1d(
    loss: torch.Tensor, x: torch.Tensor, trust_radius: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`newton_step` for points of size 1 (the Hessian is clamped to be positive).

    :returns: ``(mode, cov)`` with ``cov.shape == x.shape[:-1] + (1, 1)``.
    """
    _check(loss, x, 1)
    g = grad(loss, [x], create_graph=True)[0]
    H = grad(g.sum(), [x], create_graph=True)[0]
    warn_if_nan(g, "g")
    warn_if_nan(H, "H")
    H_inv = H.clamp(min=1e-8).reciprocal()
    dx = -g * H_inv
    dx = torch.where(torch.isnan(dx), torch.zeros_like(dx), dx)
    if trust_radius is not None:
        dx = dx.clamp(min=-trust_radius, max=trust_radius)
    return x.detach() + dx, H_inv.unsqueeze(-1)


def _hessian_rows(g: torch.Tensor, x: torch.Tensor, size: int) -> torch.Tensor:
    # The loss is a sum over independent batch points, so one backward pass per coordinate
    # gives that coordinate's Hessian row at every point at once.
    return torch.stack([grad(g[..., i].sum(), [x], create_graph=True)[0] for i in range(size)], -1)


def _solve_step(
    x: torch.Tensor, g: torch.Tensor, H: torch.Tensor, min_eig: torch.Tensor | None, trust_radius: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    size = x.shape[-1]
    if trust_radius is not None and min_eig is not None:
        # Shift the spectrum until the Newton step is no longer than the trust radius.
        regularizer = (g.pow(2).sum(-1).sqrt() / trust_radius - min_eig).clamp(min=1e-8)
        warn_if_nan(regularizer, "regularizer")
        H = H + regularizer[..., None, None] * torch.eye(size, dtype=H.dtype, device=H.device)
    H_inv = rinverse(H, sym=True)
    warn_if_nan(H_inv, "Hinv")
    return x.detach() - (H_inv * g.unsqueeze(-2)).sum(-1), H_inv


def newton_step_2d(
    loss: torch.Tensor, x: torch.Tensor, trust_radius: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`newton_step` for points of size 2.

    :returns: ``(mode, cov)`` with ``cov.shape == x.shape[:-1] + (2, 2)``.
    """
    _check(loss, x, 2)
    g = grad(loss, [x], create_graph=True)[0]
    H = _hessian_rows(g, x, 2)
    warn_if_nan(g, "g")
    warn_if_nan(H, "H")
    min_eig = None
    if trust_radius is not None:
        det = H[..., 0, 0] * H[..., 1, 1] - H[..., 0, 1] * H[..., 1, 0]
        mean = (H[..., 0, 0] + H[..., 1, 1]) / 2
        min_eig = mean - (mean**2 - det).clamp(min=0).sqrt()
    return _solve_step(x, g, H, min_eig, trust_radius)


def newton_step_3d(
    loss: torch.Tensor, x: torch.Tensor, trust_radius: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`newton_step` for points of size 3.

    :returns: ``(mode, cov)`` with ``cov.shape == x.shape[:-1] + (3, 3)``.
    """
    _check(loss, x, 3)
    g = grad(loss, [x], create_graph=True)[0]
    H = _hessian_rows(g, x, 3)
    warn_if_nan(g, "g")
    warn_if_nan(H, "H")
    min_eig = eig_3d(H)[0] if trust_radius is not None else None
    return _solve_step(x, g, H, min_eig, trust_radius)
