"""Dense Hessians by repeated reverse-mode differentiation."""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["hessian"]


def hessian(y: torch.Tensor, xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The Hessian of the scalar ``y`` with respect to ``xs``, flattened and concatenated.

    One backward pass per input element, so this is for small inputs.

    :param y: a scalar that depends on ``xs`` twice-differentiably.
    :param xs: the inputs (each ``requires_grad``).
    :returns: a ``(D, D)`` matrix, ``D`` the total number of elements of ``xs``.

    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> hessian((x[0] * x[1]) ** 2, [x])
    tensor([[8., 8.],
            [8., 2.]])
    """
    xs = list(xs)
    grads = torch.autograd.grad(y, xs, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    rows = []
    for g in flat:
        second = torch.autograd.grad(g, xs, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(x) if h is None else h).reshape(-1) for x, h in zip(xs, second)]))
    return torch.stack(rows)
