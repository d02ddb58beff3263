"""Linear-Gaussian state space models: :class:`GaussianHMM` and :class:`GaussianMRF`."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions._common import new_instance
from ember.distributions._hmm import HiddenMarkovModel, _InitialFactorHMM, _linear_model_shapes
from ember.distributions.torch_distribution import TorchDistribution, TorchDistributionMixin
from ember.distributions.torch_multivariate import MultivariateNormal
from ember.distributions.util import broadcast_shape
from ember.ops.gaussian import (
    AffineNormal,
    Gaussian,
    gaussian_tensordot,
    matrix_and_mvn_to_gaussian,
    mvn_to_gaussian,
    sequential_gaussian_filter_sample,
    sequential_gaussian_tensordot,
)

__all__ = ["GaussianHMM", "GaussianMRF"]


def _is_normal_vector(dist: object) -> bool:
    return isinstance(dist, torch.distributions.MultivariateNormal) or (
        isinstance(dist, torch.distributions.Independent)
        and isinstance(dist.base_dist, torch.distributions.Normal)
    )


def _require_normal(owner: str, **dists: object) -> None:
    for name, d in dists.items():
        if not _is_normal_vector(d):
            raise ValueError(
                f"{owner}: expected {name} to be a MultivariateNormal or Normal(...).to_event(1), "
                f"got {type(d).__name__}"
            )


def _posterior_mvn(g: Gaussian, validate_args: bool | None) -> MultivariateNormal:
    loc = torch.cholesky_solve(g.info_vec.unsqueeze(-1), torch.linalg.cholesky(g.precision))
    return MultivariateNormal(loc.squeeze(-1), precision_matrix=g.precision, validate_args=validate_args)


class GaussianHMM(_InitialFactorHMM, family=True):
    """A linear-Gaussian state space model (Kalman filter model) over observation series.

    Hidden states evolve by ``z_t = z_(t-1) @ transition_matrix + transition noise`` from
    ``z_0 ~ initial_dist`` (the state before the first observation), and observations are
    ``x_t = z_t @ observation_matrix + observation noise``. Noises are multivariate or
    diagonal normals. ``log_prob`` integrates the states out exactly by a parallel scan, and
    ``rsample`` is a reparameterized joint draw (parallel-scan forward filter, backward sample).

    :param initial_dist: the ``hidden_dim`` normal of ``z_0``, batch shape ``batch``.
    :param transition_matrix: ``(..., T or 1, hidden_dim, hidden_dim)``.
    :param transition_dist: the transition noise, batch shape ``(..., T or 1)``.
    :param observation_matrix: ``(..., T or 1, hidden_dim, obs_dim)``.
    :param observation_dist: the observation noise, batch shape ``(..., T or 1)``.
    :param validate_args: whether to validate arguments and samples.
    :param duration: the series length, for homogeneous models.
    :raises ValueError: if a distribution is not normal or the shapes disagree.

    >>> import ember.distributions as dist
    >>> noise = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    >>> d = GaussianHMM(noise, torch.eye(2), noise, torch.ones(2, 1), dist.Normal(torch.zeros(1), 1.0).to_event(1),
    ...                 duration=4)
    >>> d.rsample().shape
    torch.Size([4, 1])
    """

    has_rsample = True
    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.independent(constraints.real, 2)  # type: ignore[no-untyped-call]  # torch: unannotated

    hidden_dim: int
    obs_dim: int
    _init: Gaussian
    _trans: Gaussian | AffineNormal
    _obs: Gaussian | AffineNormal

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
        _require_normal(
            "GaussianHMM",
            initial_dist=initial_dist,
            transition_dist=transition_dist,
            observation_dist=observation_dist,
        )
        hidden_dim, obs_dim, batch_shape, time_shape = _linear_model_shapes(
            "GaussianHMM", "for observation_matrix of shape {shape}",
            initial_dist, transition_matrix, transition_dist, observation_matrix, observation_dist,
        )
        super().__init__(duration, batch_shape, time_shape + (obs_dim,), validate_args)
        self.hidden_dim = hidden_dim
        self.obs_dim = obs_dim
        self._init = mvn_to_gaussian(initial_dist).expand(self.batch_shape)
        self._trans = matrix_and_mvn_to_gaussian(transition_matrix, transition_dist)
        self._obs = matrix_and_mvn_to_gaussian(observation_matrix, observation_dist)

    def _copy_structure(self, new: GaussianHMM) -> None:
        new.hidden_dim, new.obs_dim = self.hidden_dim, self.obs_dim
        new._trans, new._obs = self._trans, self._obs

    def _conditioned_transitions(self, value: torch.Tensor) -> Gaussian:
        result = self._trans + self._obs.condition(value).event_pad(left=self.hidden_dim)
        return result.expand(result.batch_shape)

    def _joint_final(self, value: torch.Tensor) -> Gaussian:
        chained = sequential_gaussian_tensordot(self._conditioned_transitions(value))
        return gaussian_tensordot(self._init, chained, dims=self.hidden_dim)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log marginal likelihood of a series, integrating out the hidden states.

        :param value: a series of shape ``(..., T, obs_dim)``.
        """
        if self._validate_args:
            self._validate_sample(value)
        return self._joint_final(value).event_logsumexp()

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized joint draws of series.

        :param sample_shape: the shape of independent draws.
        :raises ValueError: if the model has no fixed ``duration``.
        """
        if self.duration is None:
            raise ValueError("GaussianHMM.rsample: a homogeneous model needs a duration")
        trans = self._trans + self._obs.marginalize(right=self.obs_dim).event_pad(left=self.hidden_dim)
        trans = trans.expand(trans.batch_shape[:-1] + (self.duration,))
        states = sequential_gaussian_filter_sample(self._init, trans, torch.Size(sample_shape))
        emission = self._obs.left_condition(states[..., 1:, :])
        return emission.rsample()

    def rsample_posterior(self, value: torch.Tensor, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws of the hidden states ``z_1 .. z_T`` given observations.

        :param value: a series of shape ``(..., T, obs_dim)``.
        :param sample_shape: the shape of independent draws.
        """
        trans = self._conditioned_transitions(value)
        states = sequential_gaussian_filter_sample(self._init, trans, torch.Size(sample_shape))
        return states[..., 1:, :]

    def filter(self, value: torch.Tensor) -> MultivariateNormal:
        """The posterior over the final hidden state given a series.

        :param value: a series of shape ``(..., T, obs_dim)``.
        """
        if self._validate_args:
            self._validate_sample(value)
        return _posterior_mvn(self._joint_final(value), self._validate_args)

    def conjugate_update(self, other: Any) -> tuple[GaussianHMM, torch.Tensor]:
        """Multiply by a normal likelihood over series and renormalize.

        :param other: ``Normal(...)`` or ``MultivariateNormal(...)`` with event shape
            ``(T, obs_dim)`` (via ``to_event``).
        :returns: the updated HMM and the log normalizer of the product.
        :raises ValueError: if ``other`` is not such a distribution.
        """
        if not isinstance(other, torch.distributions.Independent) or not isinstance(
            other.base_dist, (torch.distributions.Normal, torch.distributions.MultivariateNormal)
        ):
            raise ValueError(f"GaussianHMM.conjugate_update: expected a normal series, got {other!r}")
        duration = other.event_shape[0] if self.duration is None else self.duration
        event_shape = torch.Size((duration, self.obs_dim))
        if other.event_shape != event_shape:
            raise ValueError(
                f"GaussianHMM.conjugate_update: expected event shape {tuple(event_shape)}, "
                f"got {tuple(other.event_shape)}"
            )
        new: GaussianHMM = new_instance(self, GaussianHMM, None)
        self._copy_structure(new)
        per_step: Any = other  # an Ember Independent, which has to_event
        new._obs = self._obs + mvn_to_gaussian(per_step.to_event(-1)).event_pad(left=self.hidden_dim)
        trans = new._trans + new._obs.marginalize(right=self.obs_dim).event_pad(left=self.hidden_dim)
        chained = sequential_gaussian_tensordot(trans.expand(trans.batch_shape))
        log_normalizer = gaussian_tensordot(self._init, chained, dims=self.hidden_dim).event_logsumexp()
        new._init = self._init - log_normalizer
        HiddenMarkovModel.__init__(new, duration, log_normalizer.shape, event_shape, validate_args=False)
        new._validate_args = self.__dict__.get("_validate_args", self._validate_args)
        return new, log_normalizer

    def prefix_condition(self, data: torch.Tensor) -> GaussianHMM:
        """The distribution of the remaining series after observing its first ``t`` steps.

        :param data: observations of shape ``(..., t, obs_dim)`` with ``t < duration``.
        :raises ValueError: if ``data`` does not fit.
        """
        if self.duration is None or data.dim() < 2 or data.size(-1) != self.obs_dim or data.size(-2) >= self.duration:
            raise ValueError(
                f"GaussianHMM.prefix_condition: expected data of shape (..., t, {self.obs_dim}) "
                f"with t < duration = {self.duration}, got {tuple(data.shape)}"
            )
        t = data.size(-2)
        left: GaussianHMM = new_instance(self, GaussianHMM, None)
        right: GaussianHMM = new_instance(self, GaussianHMM, None)
        for part in (left, right):
            part.hidden_dim, part.obs_dim = self.hidden_dim, self.obs_dim
        for name in ("_obs", "_trans"):
            factor = getattr(self, name)
            homogeneous = factor.batch_shape == () or factor.batch_shape[-1] == 1
            setattr(left, name, factor if homogeneous else factor[..., :t])
            setattr(right, name, factor if homogeneous else factor[..., t:])
        left._init = self._init
        HiddenMarkovModel.__init__(left, t, self.batch_shape, (t, self.obs_dim), self._validate_args)
        right._init = mvn_to_gaussian(left.filter(data))
        batch_shape = broadcast_shape(right._init.batch_shape, self.batch_shape)
        rest = self.duration - t
        HiddenMarkovModel.__init__(right, rest, batch_shape, (rest, self.obs_dim), self._validate_args)
        return right


class GaussianMRF(TorchDistribution):
    """A Gaussian Markov random field over series: pairwise factors on ``(z_t, z_(t+1))``.

    Unlike :class:`GaussianHMM`, the transition and observation factors are joint normals
    (over ``(z_(t-1), z_t)`` and ``(z_t, x_t)``) rather than conditionals; ``log_prob`` is
    ``log p(x, z) - log p(z)`` with ``z`` integrated out of each.

    :param initial_dist: a ``MultivariateNormal`` over ``z_0`` (``hidden_dim``).
    :param transition_dist: a ``MultivariateNormal`` over ``(z_(t-1), z_t)``, batch ``(..., T)``.
    :param observation_dist: a ``MultivariateNormal`` over ``(z_t, x_t)``, batch ``(..., T)``.
    :param validate_args: whether to validate arguments and samples.
    :raises ValueError: if a distribution is not multivariate normal or the sizes disagree.
    """

    arg_constraints: dict[str, constraints.Constraint] = {}

    hidden_dim: int
    obs_dim: int
    _init: Gaussian
    _trans: Gaussian
    _obs: Gaussian
    _support: constraints.Constraint

    def __init__(
        self,
        initial_dist: Any,
        transition_dist: Any,
        observation_dist: Any,
        validate_args: bool | None = None,
    ) -> None:
        for name, d in {"initial_dist": initial_dist, "transition_dist": transition_dist,
                        "observation_dist": observation_dist}.items():
            if not isinstance(d, torch.distributions.MultivariateNormal):
                raise ValueError(f"GaussianMRF: expected {name} to be a MultivariateNormal, got {type(d).__name__}")
        hidden_dim = initial_dist.event_shape[0]
        if transition_dist.event_shape[0] != 2 * hidden_dim:
            raise ValueError(
                f"GaussianMRF: expected transition_dist.event_shape == ({2 * hidden_dim},) for "
                f"hidden_dim {hidden_dim}, got {tuple(transition_dist.event_shape)}"
            )
        obs_dim = observation_dist.event_shape[0] - hidden_dim
        shape = broadcast_shape(
            initial_dist.batch_shape + (1,), transition_dist.batch_shape, observation_dist.batch_shape
        )
        batch_shape, time_shape = shape[:-1], shape[-1:]
        super().__init__(torch.Size(batch_shape), torch.Size(time_shape + (obs_dim,)), validate_args)
        self.hidden_dim = hidden_dim
        self.obs_dim = obs_dim
        self._init = mvn_to_gaussian(initial_dist)
        self._trans = mvn_to_gaussian(transition_dist)
        self._obs = mvn_to_gaussian(observation_dist)
        # torch leaves the constraint's __init__ unannotated
        self._support = constraints.independent(observation_dist.support, 1)  # type: ignore[no-untyped-call]

    @constraints.dependent_property(event_dim=2)
    def support(self) -> Any:
        """Series of real vectors."""
        return self._support

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the initial factor to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, GaussianMRF, _instance)
        shape = torch.Size(broadcast_shape(self.batch_shape, batch_shape))
        new.hidden_dim, new.obs_dim = self.hidden_dim, self.obs_dim
        new._init = self._init.expand(shape)
        new._trans, new._obs, new._support = self._trans, self._obs, self._support
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self.__dict__.get("_validate_args", self._validate_args)
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log p(x) = log int p(x, z) dz - log int p(z) dz`` for a series ``x``.

        :param value: a series of shape ``(..., T, obs_dim)``.
        """
        joint = self._trans + self._obs.condition(value).event_pad(left=self.hidden_dim)
        hidden = self._trans + self._obs.marginalize(right=self.obs_dim).event_pad(left=self.hidden_dim)
        # Stack both chains on a new leading batch dim so one scan handles them.
        ndim = 1 + max(len(self._init.batch_shape) + 1, len(joint.batch_shape))
        shape = (1,) * (ndim - len(joint.batch_shape)) + tuple(joint.batch_shape)
        both = Gaussian.cat([joint.expand(shape), hidden.expand(shape)])
        chained = gaussian_tensordot(self._init, sequential_gaussian_tensordot(both), dims=self.hidden_dim)
        log_joint, log_hidden = chained.event_logsumexp()
        result: torch.Tensor = log_joint - log_hidden
        return result
