"""The shared body of real-valued location-scale families with scalar parameters."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import _ExpandFamily
from ember.distributions._params import broadcast_parameters, expand_parameters
from ember.distributions.torch_distribution import TorchDistribution


class _RealLocScale(TorchDistribution):
    """``loc`` and positive ``scale``, broadcast together; subclasses give the density."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.loc, self.scale = broadcast_parameters(type(self).__name__, loc=loc, scale=scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        return expand_parameters(self, type(self), _instance, batch_shape, ("loc", "scale"))


class _RealLocScaleAsymmetry(_ExpandFamily, TorchDistribution):
    """``loc``, positive ``scale`` and positive ``asymmetry``, broadcast together; subclasses give the density.

    A subclass's ``__init__`` (Pyro's signature) passes the parameters, in the order of
    ``arg_constraints`` (which may add positive ones), to :meth:`_set_parameters`; the public
    classes are marked ``family=True``.
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "asymmetry": constraints.positive,
    }
    support = constraints.real
    has_rsample = True
    loc: torch.Tensor
    scale: torch.Tensor
    asymmetry: torch.Tensor

    def _set_parameters(self, validate_args: bool | None, **params: torch.Tensor | float) -> None:
        values = broadcast_parameters(type(self).__name__, **params)
        for name, value in zip(params, values):
            setattr(self, name, value)
        TorchDistribution.__init__(self, values[0].shape, validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        return expand_parameters(self, self._family, _instance, batch_shape, tuple(self.arg_constraints))


class _InverseCdfRsample(TorchDistribution):
    """``rsample`` through the subclass's ``icdf``: reparameterized by the inverse CDF. List it first."""

    loc: torch.Tensor

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws by the inverse CDF of uniforms."""
        u = self.loc.new_empty(self._extended_shape(sample_shape)).uniform_()
        return self.icdf(u)
