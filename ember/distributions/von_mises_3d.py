"""The von Mises-Fisher distribution on the 2-sphere."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions.torch_distribution import TorchDistribution, TorchDistributionMixin

__all__ = ["VonMises3D"]


class VonMises3D(TorchDistribution):
    """Von Mises-Fisher distribution over unit 3-vectors, density ``exp(c . x)`` normalized.

    One parameter holds both the mean direction (its direction) and the concentration (its
    norm). Values are unit vectors in Cartesian coordinates. Only ``log_prob`` is implemented;
    :class:`~ember.distributions.ProjectedNormal` is a sampleable relative.

    :param concentration: the combined direction-and-concentration vector, last dim 3.
    :param validate_args: whether to validate arguments and samples.
    :raises ValueError: if the last dimension of ``concentration`` is not 3.

    >>> VonMises3D(torch.tensor([0.0, 0.0, 1.0])).log_prob(torch.tensor([0.0, 0.0, 1.0]))
    tensor(-1.6925)
    """

    arg_constraints = {"concentration": constraints.real}
    support = constraints.sphere

    def __init__(self, concentration: torch.Tensor, validate_args: bool | None = None) -> None:
        if concentration.dim() < 1 or concentration.shape[-1] != 3:
            raise ValueError(
                "Expected concentration to have rightmost dim 3, actual shape = "
                f"{concentration.shape}"
            )
        self.concentration = concentration
        super().__init__(
            concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``c . x`` minus the log normalizer ``log(4 pi sinh|c| / |c|)``.

        :param value: unit 3-vectors.
        :raises ValueError: with validation on, if ``value`` is not a unit 3-vector.
        """
        if self._validate_args:
            if value.dim() < 1 or value.shape[-1] != 3:
                raise ValueError(
                    f"Expected value to have rightmost dim 3, actual shape = {value.shape}"
                )
            if not bool((value.norm(2, -1) - 1).abs().lt(1e-6).all()):
                raise ValueError("direction vectors are not normalized")
        kappa: torch.Tensor = self.concentration.norm(2, -1)
        log_normalizer = kappa.log() - kappa.sinh().log() - math.log(4 * math.pi)
        return (self.concentration * value).sum(-1) + log_normalizer

    def expand(self, batch_shape: _size, _instance: Any = None) -> TorchDistributionMixin:
        """A new instance whose ``concentration`` is expanded to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: unused; kept for torch's signature.
        """
        validate_args = self.__dict__.get("_validate_args")
        concentration = self.concentration.expand(torch.Size(batch_shape) + (3,))
        return type(self)(concentration, validate_args=validate_args)
