"""A zero-mean mixture of normals that differ only by an overall scale."""

from __future__ import annotations

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._mixture_rsample import implicit_mixture_sample
from ember.distributions.diag_normal_mixture import _LOG_ROOT_TWO_PI, MixtureShapeError
from ember.distributions.torch import Categorical
from ember.distributions.torch_distribution import TorchDistribution

__all__ = ["GaussianScaleMixture"]

class GaussianScaleMixture(TorchDistribution):
    """``sum_k pi_k Normal(0, (component_scale_k * coord_scale)**2 I)`` over ``R^D``.

    The batch shape is empty. ``rsample`` carries an exact pathwise gradient to all three
    parameters (see :mod:`ember.distributions._mixture_rsample`).

    :param coord_scale: the positive per-coordinate scales, ``D``.
    :param component_logits: mixture logits, ``K``.
    :param component_scale: the positive component scales, ``K``.
    :raises MixtureShapeError: if the shapes disagree.
    :raises NotImplementedError: if ``D = 1``, as in Pyro.

    >>> d = GaussianScaleMixture(torch.ones(2), torch.zeros(2), torch.ones(2))
    >>> d.log_prob(torch.zeros(2))
    tensor(-1.8379)
    """

    has_rsample = True
    arg_constraints = {
        "component_scale": constraints.positive,
        "coord_scale": constraints.positive,
        "component_logits": constraints.real,
    }
    support = constraints.real_vector

    def __init__(
        self,
        coord_scale: torch.Tensor,
        component_logits: torch.Tensor,
        component_scale: torch.Tensor,
    ) -> None:
        shapes = (
            f"coord_scale {tuple(coord_scale.shape)}, component_logits "
            f"{tuple(component_logits.shape)}, component_scale {tuple(component_scale.shape)}"
        )
        if coord_scale.dim() != 1:
            raise MixtureShapeError(f"GaussianScaleMixture: coord_scale must be D: {shapes}")
        self.dim = coord_scale.size(0)
        if self.dim < 2:
            raise NotImplementedError("This distribution does not support D = 1")
        if component_logits.dim() != 1 or component_logits.shape != component_scale.shape:
            raise MixtureShapeError(
                "GaussianScaleMixture: component_logits and component_scale must both be K: "
                f"{shapes}"
            )
        self.coord_scale = coord_scale
        self.component_logits = component_logits
        self.component_scale = component_scale
        self.categorical = Categorical(logits=component_logits)
        super().__init__(event_shape=torch.Size((self.dim,)))

    def _scales(self) -> torch.Tensor:
        return self.component_scale.unsqueeze(-1) * self.coord_scale  # K x D

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log mixture density at ``value`` (any leading sample dimensions)."""
        if self._validate_args:
            self._validate_sample(value)
        radius_sq = (value / self.coord_scale).pow(2).sum(-1, keepdim=True)
        log_weights = self.component_logits - self.component_logits.logsumexp(-1)
        per_component = (
            log_weights
            - self.dim * self.component_scale.log()
            - 0.5 * radius_sq / self.component_scale.pow(2)
        )
        return (
            per_component.logsumexp(-1)
            - _LOG_ROOT_TWO_PI * self.dim
            - self.coord_scale.log().sum()
        )

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws with pathwise gradients to all parameters."""
        shape = torch.Size(sample_shape)
        with torch.no_grad():
            which = self.categorical.sample(shape)
            white = self.coord_scale.new_empty(shape + (self.dim,)).normal_()
            z = self.coord_scale * self.component_scale[which].unsqueeze(-1) * white
        locs = torch.zeros_like(self.coord_scale)
        return implicit_mixture_sample(z, locs, self._scales(), self.component_logits)

    @property
    def mean(self) -> torch.Tensor:
        """Zero."""
        return torch.zeros_like(self.coord_scale)

    @property
    def variance(self) -> torch.Tensor:
        """``coord_scale**2 * sum_k pi_k component_scale_k**2``."""
        second = (self.categorical.probs * self.component_scale**2).sum(-1)
        return self.coord_scale**2 * second
