"""The base class of the hidden Markov model distributions, and :class:`IndependentHMM`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions._common import _ExpandFamily, new_instance
from ember.distributions.torch_distribution import TorchDistribution, TorchDistributionMixin
from ember.distributions.util import broadcast_shape

__all__ = ["HiddenMarkovModel", "IndependentHMM"]


class HiddenMarkovModel(TorchDistribution):
    """Base class of distributions over time series ``(duration,) + obs_event_shape``.

    A model whose parameters are homogeneous in time (time dim of size 1) has no fixed
    ``duration`` unless one is given: it then scores series of any length.

    :param duration: the number of time steps, if fixed.
    :param batch_shape: the batch shape.
    :param event_shape: ``(time,) + obs_event_shape``; ``time`` is 1 for homogeneous models.
    :param validate_args: whether to validate arguments and samples.
    :raises ValueError: if ``duration`` contradicts a time dim other than 1.
    """

    def __init__(
        self,
        duration: int | None,
        batch_shape: _size,
        event_shape: _size,
        validate_args: bool | None = None,
    ) -> None:
        event_shape = torch.Size(event_shape)
        if duration is None:
            if event_shape[0] != 1:
                duration = event_shape[0]
        elif duration != event_shape[0]:
            if event_shape[0] != 1:
                raise ValueError(f"duration, event_shape mismatch: {duration} vs {event_shape}")
            event_shape = torch.Size((duration,)) + event_shape[1:]
        self._duration = duration
        super().__init__(torch.Size(batch_shape), event_shape, validate_args)

    @property
    def duration(self) -> int | None:
        """The number of time steps, or ``None`` for a homogeneous model of any length."""
        return self._duration

    def _validate_sample(self, value: torch.Tensor) -> None:
        if value.dim() < self.event_dim:
            raise ValueError(f"value has too few dimensions: {value.shape}")
        if self.duration is not None:
            super()._validate_sample(value)
            return
        # A homogeneous model checks the value against its own length.
        old = self._event_shape
        self._event_shape = torch.Size((value.size(-self.event_dim),)) + old[1:]
        try:
            super()._validate_sample(value)
        finally:
            self._event_shape = old


def _linear_model_shapes(
    owner: str,
    sizes_from: str,
    initial_dist: TorchDistributionMixin,
    transition_matrix: torch.Tensor,
    transition_dist: TorchDistributionMixin,
    observation_matrix: torch.Tensor,
    observation_dist: TorchDistributionMixin,
    *leading: Sequence[int],
) -> tuple[int, int, torch.Size, torch.Size]:
    """``(hidden_dim, obs_dim, batch_shape, time_shape)`` of a linear state space model.

    The sizes come from ``observation_matrix``; the batch shapes of the parameters (after the
    shapes ``leading``) broadcast to ``batch_shape + time_shape``.

    :param owner: the model's name, for the error message.
    :param sizes_from: the message's ``for ...`` clause, formatted with ``shape`` (of
        ``observation_matrix``), ``hidden_dim`` and ``obs_dim``.
    :raises ValueError: naming the first event shape that does not fit.
    """
    hidden_dim, obs_dim = observation_matrix.shape[-2:]
    expected = {
        "initial_dist.event_shape": (initial_dist.event_shape, (hidden_dim,)),
        "transition_matrix.shape[-2:]": (transition_matrix.shape[-2:], (hidden_dim, hidden_dim)),
        "transition_dist.event_shape": (transition_dist.event_shape, (hidden_dim,)),
        "observation_dist.event_shape": (observation_dist.event_shape, (obs_dim,)),
    }
    for name, (actual, wanted) in expected.items():
        if tuple(actual) != wanted:
            clause = sizes_from.format(shape=tuple(observation_matrix.shape), hidden_dim=hidden_dim, obs_dim=obs_dim)
            raise ValueError(f"{owner}: expected {name} == {wanted} {clause}, got {tuple(actual)}")
    shape = broadcast_shape(
        *leading,
        initial_dist.batch_shape + (1,),
        transition_matrix.shape[:-2],
        transition_dist.batch_shape,
        observation_matrix.shape[:-2],
        observation_dist.batch_shape,
    )
    return hidden_dim, obs_dim, torch.Size(shape[:-1]), torch.Size(shape[-1:])


class _InitialFactorHMM(_ExpandFamily, HiddenMarkovModel):
    """A linear state space model as factors ``_init``, ``_trans`` and ``_obs``, of which only
    ``_init`` carries the batch shape (the others broadcast); the public classes are marked
    ``family=True``."""

    hidden_dim: int
    obs_dim: int
    _init: Any
    _trans: Any
    _obs: Any

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the initial factor to ``batch_shape`` (transitions and observations broadcast).

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, self._family, _instance)
        shape = torch.Size(broadcast_shape(self.batch_shape, batch_shape))
        new.hidden_dim, new.obs_dim = self.hidden_dim, self.obs_dim
        new._trans, new._obs = self._trans, self._obs
        new._init = self._init.expand(shape)
        HiddenMarkovModel.__init__(new, self.duration, shape, self.event_shape, validate_args=False)
        new._validate_args = self.__dict__.get("_validate_args", self._validate_args)
        return new


class IndependentHMM(TorchDistribution):
    """Independent univariate HMMs, one per component, seen as one multivariate HMM.

    Wraps an HMM whose rightmost batch dimension indexes components and whose observations
    are 1-D, moving that batch dimension into the event: events of shape
    ``(duration, components)``.

    :param base_dist: an HMM with ``event_shape == (duration, 1)`` and a nonempty batch shape.
    :raises ValueError: if ``base_dist`` does not have that form.

    >>> import ember.distributions as dist
    >>> noise = dist.Normal(torch.zeros(3, 1, 1), 1.0).to_event(1)  # 3 components, 1 time step
    >>> base = dist.GaussianHMM(dist.Normal(torch.zeros(3, 1), 1.0).to_event(1),
    ...     torch.ones(3, 1, 1, 1), noise, torch.ones(3, 1, 1, 1), noise, duration=5)
    >>> IndependentHMM(base).event_shape
    torch.Size([5, 3])
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    base_dist: Any

    def __init__(self, base_dist: TorchDistributionMixin) -> None:
        if not base_dist.batch_shape or base_dist.event_dim != 2 or base_dist.event_shape[-1] != 1:
            raise ValueError(
                "IndependentHMM: expected base_dist with a batch dim and event shape "
                f"(duration, 1), got batch_shape {tuple(base_dist.batch_shape)} and event_shape "
                f"{tuple(base_dist.event_shape)}"
            )
        batch_shape = base_dist.batch_shape[:-1]
        event_shape = base_dist.event_shape[:-1] + base_dist.batch_shape[-1:]
        super().__init__(batch_shape, event_shape)
        self.base_dist = base_dist

    @constraints.dependent_property(event_dim=2)
    def support(self) -> Any:
        """The base distribution's support."""
        return self.base_dist.support

    @property
    # torch declares a writable class attribute, which this read-only property narrows
    def has_rsample(self) -> bool:  # type: ignore[override]
        """Whether the base distribution can draw reparameterized samples."""
        return bool(self.base_dist.has_rsample)

    @property
    def duration(self) -> int | None:
        """The base distribution's duration."""
        duration: int | None = self.base_dist.duration
        return duration

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the base distribution (keeping its component dim) to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, IndependentHMM, _instance)
        shape = torch.Size(batch_shape)
        new.base_dist = self.base_dist.expand(shape + self.base_dist.batch_shape[-1:])
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self.__dict__.get("_validate_args", self._validate_args)
        return new

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """The base samples with the component dim moved into the event.

        :param sample_shape: the shape of independent draws.
        """
        result: torch.Tensor = self.base_dist.rsample(sample_shape).squeeze(-1).transpose(-1, -2)
        return result

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Like :meth:`rsample`, from the base distribution's ``sample``.

        :param sample_shape: the shape of independent draws.
        """
        result: torch.Tensor = self.base_dist.sample(sample_shape).squeeze(-1).transpose(-1, -2)
        return result

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of the components' log densities.

        :param value: series of shape ``(..., duration, components)``.
        """
        result: torch.Tensor = self.base_dist.log_prob(value.transpose(-1, -2).unsqueeze(-1))
        return result.sum(-1)
