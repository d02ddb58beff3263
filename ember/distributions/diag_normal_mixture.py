"""Finite mixtures of diagonal normals, with pathwise gradients for their samples."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import _ExpandFamily, new_instance
from ember.distributions._mixture_rsample import implicit_mixture_sample
from ember.distributions.torch import Categorical
from ember.distributions.torch_distribution import TorchDistribution

__all__ = ["MixtureOfDiagNormals", "MixtureOfDiagNormalsSharedCovariance", "MixtureShapeError"]

_LOG_ROOT_TWO_PI = 0.5 * math.log(2 * math.pi)


class MixtureShapeError(ValueError, AssertionError):
    """Parameters of a mixture have incompatible shapes.

    A :class:`ValueError`, and an :class:`AssertionError` because Pyro checks these shapes
    with ``assert``.
    """


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise MixtureShapeError(message)


def _mixture_log_prob(
    value: torch.Tensor, locs: torch.Tensor, scales: torch.Tensor, logits: torch.Tensor
) -> torch.Tensor:
    standard = (value.unsqueeze(-2) - locs) / scales
    per_component = -0.5 * standard.pow(2).sum(-1) - scales.log().sum(-1)
    log_weights = logits - logits.logsumexp(-1, keepdim=True)
    dim = value.shape[-1]
    return (log_weights + per_component).logsumexp(-1) - _LOG_ROOT_TWO_PI * dim


def _ancestral_sample(
    categorical: Categorical,
    locs: torch.Tensor,
    scales: torch.Tensor,
    sample_shape: _size,
    noise_shape: torch.Size,
) -> torch.Tensor:
    """Pick components, then add scaled white noise (Pyro's order of random draws)."""
    with torch.no_grad():
        which = categorical.sample(sample_shape)
        white = locs.new_empty(noise_shape).normal_()
        index = which.reshape(which.shape + (1, 1)).expand(which.shape + (1, locs.shape[-1]))
        batch = which.shape
        loc = torch.gather(locs.expand(batch + locs.shape[-2:]), -2, index).squeeze(-2)
        scale = torch.gather(scales.expand(batch + locs.shape[-2:]), -2, index).squeeze(-2)
        return loc + scale * white


class _DiagNormalMixture(_ExpandFamily, TorchDistribution):
    """The parts the two diagonal-normal mixtures share: ``K x D`` means, logits, shape checks, ``expand``.

    A subclass sets how many trailing dims of ``coord_scale`` are per-mixture (2: ``K x D``,
    1: a shared ``D``) and the texts its shape errors state.
    """

    has_rsample = True
    arg_constraints = {
        "locs": constraints.real,
        "coord_scale": constraints.positive,
        "component_logits": constraints.real,
    }
    support = constraints.real_vector
    _name: ClassVar[str]
    _scale_rank: ClassVar[int]
    _scale_rule: ClassVar[str]
    _logits_rule: ClassVar[str]
    _min_dim: ClassVar[int] = 0

    def __init__(
        self, locs: torch.Tensor, coord_scale: torch.Tensor, component_logits: torch.Tensor
    ) -> None:
        name = self._name
        shapes = (
            f"locs {tuple(locs.shape)}, coord_scale {tuple(coord_scale.shape)}, "
            f"component_logits {tuple(component_logits.shape)}"
        )
        _check(locs.dim() >= 2, f"{name}: locs must be K x D (or ... x K x D): {shapes}")
        _check(
            coord_scale.shape == locs.shape[:-2] + locs.shape[-self._scale_rank :],
            f"{name}: coord_scale must {self._scale_rule}: {shapes}",
        )
        _check(
            component_logits.shape == locs.shape[:-1],
            f"{name}: component_logits must be {self._logits_rule}, matching locs: {shapes}",
        )
        self.batch_mode = locs.dim() > 2
        self.locs = locs
        self.coord_scale = coord_scale
        self.component_logits = component_logits
        self.dim = locs.size(-1)
        if self.dim < self._min_dim:
            raise NotImplementedError("This distribution does not support D = 1")
        self.categorical = Categorical(logits=component_logits)
        self.probs = self.categorical.probs
        super().__init__(locs.shape[:-2], locs.shape[-1:])

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, self._family, _instance)
        shape = torch.Size(batch_shape)
        new.batch_mode = True
        new.dim = self.dim
        new.locs = self.locs.expand(shape + self.locs.shape[-2:])
        new.coord_scale = self.coord_scale.expand(shape + self.coord_scale.shape[-self._scale_rank :])
        new.component_logits = self.component_logits.expand(shape + self.component_logits.shape[-1:])
        new.categorical = self.categorical.expand(shape)
        new.probs = self.probs.expand(shape + self.probs.shape[-1:])
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> torch.Tensor:
        """The probability-weighted mean of the component means."""
        return (self.probs.unsqueeze(-1) * self.locs).sum(-2)


class MixtureOfDiagNormals(_DiagNormalMixture, family=True):
    """A mixture of ``K`` normals with diagonal covariances over ``R^D``.

    ``rsample`` draws a component and a normal sample from it, and carries an exact
    pathwise gradient to all parameters, including the mixture logits (see
    :mod:`ember.distributions._mixture_rsample`).

    :param locs: component means, ``K x D`` (or ``batch_shape + (K, D)``).
    :param coord_scale: positive component scales, of the shape of ``locs``.
    :param component_logits: mixture logits, ``K`` (or ``batch_shape + (K,)``).
    :raises MixtureShapeError: if the shapes disagree.

    >>> d = MixtureOfDiagNormals(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2))
    >>> d.batch_shape, d.event_shape, d.log_prob(torch.zeros(3))
    (torch.Size([]), torch.Size([3]), tensor(-2.7568))
    """

    def __init__(
        self, locs: torch.Tensor, coord_scale: torch.Tensor, component_logits: torch.Tensor
    ) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(locs, coord_scale, component_logits)

    _name = "MixtureOfDiagNormals"
    _scale_rank = 2
    _scale_rule = "have the shape of locs"
    _logits_rule = "... x K"

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log mixture density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        return _mixture_log_prob(value, self.locs, self.coord_scale, self.component_logits)

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws with pathwise gradients to locs, scales and logits."""
        noise_shape = torch.Size(sample_shape) + self.locs.shape[:-2] + (self.dim,)
        z = _ancestral_sample(self.categorical, self.locs, self.coord_scale, sample_shape, noise_shape)
        return implicit_mixture_sample(z, self.locs, self.coord_scale, self.component_logits)

    @property
    def variance(self) -> torch.Tensor:
        """The per-coordinate mixture variance."""
        second = (self.probs.unsqueeze(-1) * (self.locs**2 + self.coord_scale**2)).sum(-2)
        return second - self.mean**2


class MixtureOfDiagNormalsSharedCovariance(_DiagNormalMixture, family=True):
    """A mixture of ``K`` normals over ``R^D`` sharing one diagonal covariance.

    ``rsample`` carries an exact pathwise gradient, as for :class:`MixtureOfDiagNormals`.

    :param locs: component means, ``K x D`` (or ``batch_shape + (K, D)``).
    :param coord_scale: the positive shared scales, ``D`` (or ``batch_shape + (D,)``).
    :param component_logits: mixture logits, ``K`` (or ``batch_shape + (K,)``).
    :raises MixtureShapeError: if the shapes disagree.
    :raises NotImplementedError: if ``D = 1``, as in Pyro.

    >>> d = MixtureOfDiagNormalsSharedCovariance(torch.zeros(2, 3), torch.ones(3), torch.zeros(2))
    >>> d.log_prob(torch.zeros(3))
    tensor(-2.7568)
    """

    def __init__(
        self, locs: torch.Tensor, coord_scale: torch.Tensor, component_logits: torch.Tensor
    ) -> None:
        # Its own __init__ so that a call's TypeError names this class, as Pyro's does.
        super().__init__(locs, coord_scale, component_logits)

    _name = "MixtureOfDiagNormalsSharedCovariance"
    _scale_rank = 1
    _scale_rule = "be D (or ... x D), matching locs"
    _logits_rule = "K (or ... x K)"
    _min_dim = 2

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log mixture density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        scales = self.coord_scale.unsqueeze(-2)
        return _mixture_log_prob(value, self.locs, scales, self.component_logits)

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws with pathwise gradients to locs, scale and logits."""
        scales = self.coord_scale.unsqueeze(-2).expand(self.locs.shape)
        noise_shape = torch.Size(sample_shape) + self.coord_scale.shape
        z = _ancestral_sample(self.categorical, self.locs, scales, sample_shape, noise_shape)
        return implicit_mixture_sample(z, self.locs, scales, self.component_logits)

    @property
    def variance(self) -> torch.Tensor:
        """The per-coordinate mixture variance."""
        second = (self.probs.unsqueeze(-1) * self.locs**2).sum(-2) + self.coord_scale**2
        return second - self.mean**2
