"""Linear state space models beyond the Gaussian case: :class:`GammaGaussianHMM`, :class:`LinearHMM`."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions._common import new_instance
from ember.distributions._hmm import HiddenMarkovModel, _InitialFactorHMM, _linear_model_shapes
from ember.distributions.torch import Gamma
from ember.distributions.torch_distribution import Independent, TorchDistributionMixin
from ember.distributions.torch_multivariate import MultivariateNormal
from ember.ops.gamma_gaussian import (
    GammaGaussian,
    gamma_and_mvn_to_gamma_gaussian,
    gamma_gaussian_tensordot,
    matrix_and_mvn_to_gamma_gaussian,
    sequential_gamma_gaussian_tensordot,
)

__all__ = ["GammaGaussianHMM", "LinearHMM"]


_FOR_DIMS = "for hidden_dim {hidden_dim} and obs_dim {obs_dim}"


class GammaGaussianHMM(_InitialFactorHMM, family=True):
    """A linear-Gaussian state space model whose noise precisions share a Gamma-distributed scale.

    With ``s ~ scale_dist``, ``z_0 ~ MVN(loc, precision * s)``, transitions
    ``z_t = z_(t-1) @ transition_matrix + noise`` and observations
    ``x_t = z_t @ observation_matrix + noise``, every noise precision scaled by ``s``.
    ``log_prob`` integrates out both the states and ``s``; marginally the observations are
    multivariate Student-t.

    :param scale_dist: a ``Gamma`` over ``s``.
    :param initial_dist: a ``MultivariateNormal`` over ``z_0`` at ``s = 1``.
    :param transition_matrix: ``(..., T or 1, hidden_dim, hidden_dim)``.
    :param transition_dist: a ``MultivariateNormal`` transition noise.
    :param observation_matrix: ``(..., T or 1, hidden_dim, obs_dim)``.
    :param observation_dist: a ``MultivariateNormal`` observation noise.
    :param validate_args: whether to validate arguments and samples.
    :param duration: the series length, for homogeneous models.
    :raises ValueError: for other distribution types or disagreeing shapes.
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.independent(constraints.real, 2)  # type: ignore[no-untyped-call]  # torch: unannotated

    hidden_dim: int
    obs_dim: int
    _init: GammaGaussian
    _trans: GammaGaussian
    _obs: GammaGaussian

    def __init__(
        self,
        scale_dist: Gamma,
        initial_dist: MultivariateNormal,
        transition_matrix: torch.Tensor,
        transition_dist: MultivariateNormal,
        observation_matrix: torch.Tensor,
        observation_dist: MultivariateNormal,
        validate_args: bool | None = None,
        duration: int | None = None,
    ) -> None:
        if not isinstance(scale_dist, torch.distributions.Gamma):
            raise ValueError(f"GammaGaussianHMM: expected scale_dist to be a Gamma, got {type(scale_dist).__name__}")
        for name, d in {"initial_dist": initial_dist, "transition_dist": transition_dist,
                        "observation_dist": observation_dist}.items():
            if not isinstance(d, torch.distributions.MultivariateNormal):
                raise ValueError(
                    f"GammaGaussianHMM: expected {name} to be a MultivariateNormal, "
                    f"got {type(d).__name__}"
                )
        hidden_dim, obs_dim, batch_shape, time_shape = _linear_model_shapes(
            "GammaGaussianHMM", _FOR_DIMS,
            initial_dist, transition_matrix, transition_dist, observation_matrix, observation_dist,
            scale_dist.batch_shape + (1,),
        )
        super().__init__(duration, batch_shape, time_shape + (obs_dim,), validate_args)
        self.hidden_dim = hidden_dim
        self.obs_dim = obs_dim
        self._init = gamma_and_mvn_to_gamma_gaussian(scale_dist, initial_dist)
        self._trans = matrix_and_mvn_to_gamma_gaussian(transition_matrix, transition_dist)
        self._obs = matrix_and_mvn_to_gamma_gaussian(observation_matrix, observation_dist)

    def _joint_final(self, value: torch.Tensor) -> GammaGaussian:
        trans = self._trans + self._obs.condition(value).event_pad(left=self.hidden_dim)
        chained = sequential_gamma_gaussian_tensordot(trans.expand(trans.batch_shape))
        return gamma_gaussian_tensordot(self._init, chained, dims=self.hidden_dim)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log marginal likelihood, integrating out the states and the scale.

        :param value: a series of shape ``(..., T, obs_dim)``.
        """
        if self._validate_args:
            self._validate_sample(value)
        return self._joint_final(value).event_logsumexp().logsumexp()

    def filter(self, value: torch.Tensor) -> tuple[Gamma, MultivariateNormal]:
        """The posterior over the scale, and over the final state given the scale at 1.

        :param value: a series of shape ``(..., T, obs_dim)``.
        """
        if self._validate_args:
            self._validate_sample(value)
        final = self._joint_final(value)
        gamma = final.event_logsumexp()
        scale_post = Gamma(gamma.concentration, gamma.rate, validate_args=self._validate_args)
        factor = torch.linalg.cholesky(final.precision)
        loc = torch.cholesky_solve(final.info_vec.unsqueeze(-1), factor).squeeze(-1)
        return scale_post, MultivariateNormal(loc, scale_tril=factor, validate_args=self._validate_args)


class LinearHMM(HiddenMarkovModel):
    """A linear state space model with arbitrary (reparameterizable) noise distributions.

    ``z_t = z_(t-1) @ transition_matrix + transition noise``, ``x_t = z_t @ observation_matrix
    + observation noise``, then the transforms of a ``TransformedDistribution`` observation
    noise are applied to ``x_t``. Only sampling is implemented; ``log_prob`` needs a
    reparameterizer that makes the model Gaussian (as in Pyro).

    :param initial_dist: a vector distribution over ``z_0`` with ``has_rsample``.
    :param transition_matrix: ``(..., T or 1, hidden_dim, hidden_dim)``.
    :param transition_dist: the transition noise, event shape ``(hidden_dim,)``.
    :param observation_matrix: ``(..., T or 1, hidden_dim, obs_dim)``.
    :param observation_dist: the observation noise, event shape ``(obs_dim,)``.
    :param validate_args: whether to validate arguments and samples.
    :param duration: the series length, for homogeneous models.
    :raises ValueError: if a noise cannot be reparameterized or the shapes disagree.
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = True

    hidden_dim: int
    obs_dim: int
    initial_dist: Any
    transition_matrix: torch.Tensor
    transition_dist: Any
    observation_matrix: torch.Tensor
    observation_dist: Any
    transforms: list[Any]

    def __init__(
        self,
        initial_dist: TorchDistributionMixin,
        transition_matrix: torch.Tensor,
        transition_dist: TorchDistributionMixin,
        observation_matrix: torch.Tensor,
        observation_dist: TorchDistributionMixin,
        validate_args: bool | None = None,
        duration: int | None = None,
    ) -> None:
        for name, d in {"initial_dist": initial_dist, "transition_dist": transition_dist,
                        "observation_dist": observation_dist}.items():
            if not d.has_rsample or d.event_dim != 1:
                raise ValueError(f"LinearHMM: expected {name} to be a reparameterizable vector distribution, got {d!r}")
        hidden_dim, obs_dim, batch_shape, time_shape = _linear_model_shapes(
            "LinearHMM", _FOR_DIMS,
            initial_dist, transition_matrix, transition_dist, observation_matrix, observation_dist,
        )
        super().__init__(duration, batch_shape, time_shape + (obs_dim,), validate_args)
        series = batch_shape + time_shape
        self.hidden_dim = hidden_dim
        self.obs_dim = obs_dim
        self.initial_dist = initial_dist.expand(batch_shape)
        self.transition_matrix = transition_matrix.expand(series + (hidden_dim, hidden_dim))
        self.transition_dist = transition_dist.expand(series)
        self.observation_matrix = observation_matrix.expand(series + (hidden_dim, obs_dim))
        # Peel Independent and TransformedDistribution wrappers: the noise adds before the
        # transforms apply.
        noise: Any = observation_dist.expand(series)
        transforms: list[Any] = []
        while True:
            if isinstance(noise, torch.distributions.Independent):
                noise = noise.base_dist
            elif isinstance(noise, torch.distributions.TransformedDistribution):
                transforms = list(noise.transforms) + transforms
                noise = noise.base_dist
            else:
                break
        if not noise.event_shape:
            noise = Independent(noise, 1)
        self.observation_dist = noise
        self.transforms = transforms

    @constraints.dependent_property(event_dim=2)
    def support(self) -> Any:
        """Series in the observation noise's support."""
        # torch leaves the constraint's __init__ unannotated
        return constraints.independent(self.observation_dist.support, 1)  # type: ignore[no-untyped-call]

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand every component to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, LinearHMM, _instance)
        shape = torch.Size(batch_shape)
        series = shape + self.transition_dist.batch_shape[-1:]
        new.hidden_dim, new.obs_dim = self.hidden_dim, self.obs_dim
        new.initial_dist = self.initial_dist.expand(shape)
        new.transition_matrix = self.transition_matrix.expand(series + self.transition_matrix.shape[-2:])
        new.transition_dist = self.transition_dist.expand(series)
        new.observation_matrix = self.observation_matrix.expand(series + self.observation_matrix.shape[-2:])
        new.observation_dist = self.observation_dist.expand(series)
        new.transforms = self.transforms
        HiddenMarkovModel.__init__(new, self.duration, shape, self.event_shape, validate_args=False)
        new._validate_args = self.__dict__.get("_validate_args", self._validate_args)
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Not implemented, as in Pyro: reparameterize the model to a Gaussian one first."""
        raise NotImplementedError("LinearHMM.log_prob() is not implemented")

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized series: integrate the state recursion, then add observation noise.

        :param sample_shape: the shape of independent draws.
        :raises ValueError: if the model has no fixed ``duration``.
        """
        if self.duration is None:
            raise ValueError("LinearHMM.rsample: a homogeneous model needs a duration")
        series = self.batch_shape + (self.duration,)
        state = self.initial_dist.rsample(sample_shape).unsqueeze(-2)
        shifts = self.transition_dist.expand(series).rsample(sample_shape)
        matrices = self.transition_matrix.expand(series + (self.hidden_dim, self.hidden_dim))
        states = []
        for t in range(self.duration):
            state = state @ matrices[..., t, :, :] + shifts[..., t : t + 1, :]
            states.append(state)
        hidden = torch.cat(states, dim=-2)
        noise = self.observation_dist.expand(series).rsample(sample_shape)
        x = (hidden.unsqueeze(-2) @ self.observation_matrix).squeeze(-2) + noise
        for transform in self.transforms:
            x = transform(x)
        result: torch.Tensor = x
        return result
