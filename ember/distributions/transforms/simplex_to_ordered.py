"""Simplex vectors to ordered cut points (for ordinal regression priors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions.transforms import Transform

from ember.distributions import constraints

__all__ = ["SimplexToOrderedTransform"]


class SimplexToOrderedTransform(Transform):
    """Map a simplex of ``K`` category probabilities to ``K - 1`` ordered logistic cut points.

    ``y = logit(cumsum(x)[:-1]) + anchor_point``: the cut points at which a standard
    logistic latent centred on ``anchor_point`` yields the probabilities ``x``.

    :param anchor_point: the location of the latent logistic (default 0).

    >>> SimplexToOrderedTransform()(torch.tensor([0.25, 0.5, 0.25]))
    tensor([-1.0986,  1.0986])
    """

    domain = constraints.simplex
    codomain = constraints.ordered_vector

    def __init__(self, anchor_point: torch.Tensor | None = None) -> None:
        super().__init__()
        self.anchor_point = anchor_point if anchor_point is not None else torch.tensor(0.0)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        cumulative = torch.cumsum(x[..., :-1], dim=-1)
        return torch.logit(cumulative) + self.anchor_point.unsqueeze(-1)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        cumulative = torch.sigmoid(y - self.anchor_point.unsqueeze(-1))
        padded = F.pad(cumulative, (1, 0), value=0.0)
        padded = F.pad(padded, (0, 1), value=1.0)
        return padded[..., 1:] - padded[..., :-1]

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # As Pyro: -log(sigmoid'(y)) summed, i.e. the Jacobian of the cumulative logit.
        return (F.softplus(y) + F.softplus(-y)).sum(-1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimplexToOrderedTransform) and torch.equal(self.anchor_point, other.anchor_point)

    def __hash__(self) -> int:
        return hash(type(self))

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        return shape[:-1] + (shape[-1] - 1,)

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return shape[:-1] + (shape[-1] + 1,)
