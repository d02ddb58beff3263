"""Hidden Markov models as distributions over time series, at Pyro's ``pyro.distributions.hmm``.

:class:`DiscreteHMM` is defined here; the Gaussian family (:class:`GaussianHMM`,
:class:`GaussianMRF`, :class:`GammaGaussianHMM`, :class:`LinearHMM`) and
:class:`IndependentHMM` live in sibling modules and are re-exported. Every ``log_prob``
marginalizes the hidden states by a parallel scan over time: ``ceil(log2 T)`` batched steps.
"""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions._common import new_instance
from ember.distributions._hmm import HiddenMarkovModel, IndependentHMM
from ember.distributions.hmm_gaussian import GaussianHMM, GaussianMRF
from ember.distributions.hmm_linear import GammaGaussianHMM, LinearHMM
from ember.distributions.torch import Categorical
from ember.distributions.torch_distribution import TorchDistributionMixin
from ember.distributions.util import broadcast_shape

__all__ = [
    "DiscreteHMM",
    "GammaGaussianHMM",
    "GaussianHMM",
    "GaussianMRF",
    "HiddenMarkovModel",
    "IndependentHMM",
    "LinearHMM",
]


def _logmatmulexp(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``log(exp(x) @ exp(y))``, stable: shift rows of ``x`` and columns of ``y`` by their max."""
    lowest = torch.finfo(x.dtype).min  # keeps -inf - -inf from turning into NaN
    x_shift = x.detach().amax(-1, keepdim=True).clamp_(min=lowest)
    y_shift = y.detach().amax(-2, keepdim=True).clamp_(min=lowest)
    # In-place exp on the fresh differences saves two temporaries (about 10% of the scan).
    product = torch.matmul((x - x_shift).exp_(), (y - y_shift).exp_())
    tiny = torch.finfo(x.dtype).tiny
    return product.clamp(min=tiny).log() + (x_shift + y_shift)


def _sequential_logmatmulexp(logits: torch.Tensor) -> torch.Tensor:
    """Chain ``(..., T, S, S)`` log transition matrices into one ``(..., S, S)``, by parallel scan."""
    batch = logits.shape[:-3]
    size = logits.size(-1)
    while logits.size(-3) > 1:
        time = logits.size(-3)
        even = time // 2 * 2
        pairs = logits[..., :even, :, :].reshape(batch + (even // 2, 2, size, size))
        contracted = _logmatmulexp(pairs[..., 0, :, :], pairs[..., 1, :, :])
        if time > even:
            contracted = torch.cat((contracted, logits[..., -1:, :, :]), dim=-3)
        logits = contracted
    return logits.squeeze(-3)


def _sample_index(logits: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Draw from normalized ``logits`` along the last dim by inverting the CDF.

    ``Categorical.sample`` goes through ``torch.multinomial``, about 20x slower for many small
    rows (bench/distributions_b.py).
    """
    cdf = logits.exp().cumsum(-1).expand(shape)  # expanded after the cumsum: no copies
    u = torch.rand(shape[:-1] + (1,), dtype=cdf.dtype, device=cdf.device)
    return (cdf < u).sum(-1).clamp(max=logits.size(-1) - 1)


def _compose_paths(steps: torch.Tensor) -> torch.Tensor:
    """``steps[..., t, s]`` is the state after step ``t`` from state ``s``; return every prefix map.

    A Hillis-Steele scan over function composition: ``log2 T`` gathers of ``(..., T, S)``.
    """
    paths = steps
    offset = 1
    time = steps.size(-2)
    while offset < time:
        earlier = paths[..., :-offset, :]
        later = paths[..., offset:, :]
        composed = torch.gather(later, -1, earlier)
        paths = torch.cat([paths[..., :offset, :], composed], dim=-2)
        offset *= 2
    return paths


class DiscreteHMM(HiddenMarkovModel):
    """A hidden Markov model with finitely many hidden states and any observation family.

    The hidden chain starts at ``x_0 ~ Categorical(initial_logits)`` and moves by
    ``x_t ~ Categorical(transition_logits[t, x_(t-1)])``; observations are
    ``y_t ~ observation_dist[t, x_t]``. Note that ``initial_logits`` is the distribution of the
    state *before* the first observation. ``log_prob`` sums out every state path exactly, by
    a parallel scan of log-matrix products.

    :param initial_logits: ``(..., S)`` logits of the initial state.
    :param transition_logits: ``(..., T or 1, S, S)`` (or ``(..., S, S)``) logits of
        ``x_t`` given ``x_(t-1)`` (rows).
    :param observation_dist: a distribution with batch shape ``(..., T or 1, S)``: one
        observation distribution per time and state.
    :param validate_args: whether to validate arguments and samples.
    :param duration: the series length, for homogeneous models.
    :raises ValueError: if the arguments have too few dimensions.

    >>> import ember.distributions as dist
    >>> d = DiscreteHMM(torch.zeros(2), torch.zeros(2, 2), dist.Normal(torch.tensor([-1.0, 1.0]), 1.0),
    ...                 duration=3)
    >>> d.event_shape, d.sample().shape
    (torch.Size([3]), torch.Size([3]))
    """

    arg_constraints = {
        "initial_logits": constraints.real,
        "transition_logits": constraints.real,
    }

    initial_logits: torch.Tensor
    transition_logits: torch.Tensor
    observation_dist: Any

    def __init__(
        self,
        initial_logits: torch.Tensor,
        transition_logits: torch.Tensor,
        observation_dist: TorchDistributionMixin,
        validate_args: bool | None = None,
        duration: int | None = None,
    ) -> None:
        if initial_logits.dim() < 1:
            raise ValueError(
                "expected initial_logits to have at least one dim, "
                f"actual shape = {initial_logits.shape}"
            )
        if transition_logits.dim() < 2:
            raise ValueError(
                "expected transition_logits to have at least two dims, "
                f"actual shape = {transition_logits.shape}"
            )
        if len(observation_dist.batch_shape) < 1:
            raise ValueError(
                "expected observation_dist to have at least one batch dim, "
                f"actual .batch_shape = {observation_dist.batch_shape}"
            )
        shape = broadcast_shape(
            initial_logits.shape[:-1] + (1,),
            transition_logits.shape[:-2],
            observation_dist.batch_shape[:-1],
        )
        batch_shape, time_shape = shape[:-1], shape[-1:]
        self.initial_logits = initial_logits - initial_logits.logsumexp(-1, True)
        self.transition_logits = transition_logits - transition_logits.logsumexp(-1, True)
        self.observation_dist = observation_dist
        super().__init__(
            duration, batch_shape, time_shape + observation_dist.event_shape, validate_args
        )

    @constraints.dependent_property(event_dim=2)
    def support(self) -> Any:
        """Series of values in the observation distribution's support."""
        return constraints.independent(self.observation_dist.support, 1)  # type: ignore[no-untyped-call]  # torch: unannotated

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the initial distribution to ``batch_shape`` (transitions broadcast).

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, DiscreteHMM, _instance)
        shape = torch.Size(broadcast_shape(self.batch_shape, batch_shape))
        new.initial_logits = self.initial_logits.expand(shape + (-1,))
        new.transition_logits = self.transition_logits
        new.observation_dist = self.observation_dist
        HiddenMarkovModel.__init__(new, self.duration, shape, self.event_shape, validate_args=False)
        new._validate_args = self.__dict__.get("_validate_args", self._validate_args)
        return new

    def _chained(self, value: torch.Tensor) -> torch.Tensor:
        value = value.unsqueeze(-1 - self.observation_dist.event_dim)
        observation_logits = self.observation_dist.log_prob(value)
        return _sequential_logmatmulexp(self.transition_logits + observation_logits.unsqueeze(-2))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log marginal likelihood of a series, summing over hidden state paths.

        :param value: a series of shape ``(..., T) + obs_event_shape``.
        """
        if self._validate_args:
            self._validate_sample(value)
        chained = self._chained(value)
        return (self.initial_logits + chained.logsumexp(-1)).logsumexp(-1)

    def filter(self, value: torch.Tensor) -> Categorical:
        """The posterior over the final hidden state given a series.

        :param value: a series of shape ``(..., T) + obs_event_shape``.
        """
        if self._validate_args:
            self._validate_sample(value)
        chained = self._chained(value)
        logits = (self.initial_logits.unsqueeze(-1) + chained).logsumexp(-2)
        return Categorical(logits=logits, validate_args=self._validate_args)

    @torch.no_grad()
    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw series: a state path by a parallel scan of sampled transitions, then observations.

        :param sample_shape: the shape of independent draws.
        :raises ValueError: if the model has no fixed ``duration``.
        """
        if self.duration is None:
            raise ValueError("DiscreteHMM.sample: a homogeneous model needs a duration")
        shape = torch.Size(sample_shape) + self.batch_shape
        size = self.initial_logits.size(-1)
        start = _sample_index(self.initial_logits, shape + (size,))
        # Draw the next state from every state at every step, then compose the draws.
        steps = _sample_index(self.transition_logits, shape + (self.duration, size, size))
        paths = _compose_paths(steps)
        states = torch.gather(paths, -1, start[..., None, None].expand(shape + (self.duration, 1)))
        observations = self.observation_dist.expand(
            self.batch_shape + (self.duration, size)
        ).sample(sample_shape)
        event_dim = self.observation_dist.event_dim
        index = states.reshape(states.shape + (1,) * event_dim)
        index = index.expand(shape + (self.duration, 1) + observations.shape[observations.dim() - event_dim :])
        result: torch.Tensor = torch.gather(observations, -1 - event_dim, index).squeeze(-1 - event_dim)
        return result
