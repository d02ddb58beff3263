"""Weighed predictive samples, and their resampling into equally weighted ones.

:class:`WeighedPredictiveResults` is what :class:`~ember.infer.predictive.WeighedPredictive`
returns; :class:`MHResampler` turns a stream of such results into equally weighted samples by
independent Metropolis-Hastings. Both are importable from :mod:`ember.infer.predictive`
(Pyro's path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from ember.infer.importance import LogWeightsMixin
from ember.infer.util import CloneMixin

__all__ = ["MHResampler", "WeighedPredictiveResults"]


@dataclass
class WeighedPredictiveResults(LogWeightsMixin, CloneMixin):
    """What :class:`WeighedPredictive` returns: the samples and the weight of each.

    :param samples: the predictive samples by site name (a tuple, sorted by name, from
        :meth:`WeighedPredictive.call`).
    :param log_weights: ``model_log_prob - guide_log_prob``, one per sample.
    :param guide_log_prob: the guide's log density of each draw.
    :param model_log_prob: the (``model_guide``) model's log density of each draw.
    """

    samples: dict[str, Any] | tuple[Any, ...]
    log_weights: torch.Tensor
    guide_log_prob: torch.Tensor
    model_log_prob: torch.Tensor


class MHResampler(torch.nn.Module):
    r"""Turns weighed samples into equally weighted ones by independent Metropolis-Hastings.

    Each call draws a fresh batch from ``sampler`` (a :class:`WeighedPredictive`, or any
    callable returning :class:`WeighedPredictiveResults`) and, sample by sample, accepts the
    new draw :math:`x'` over the current :math:`x` with probability
    :math:`\min(1, w(x') / w(x))`, the guide being an independent proposal. The first call
    returns the guide's draws; later ones approach the target, quickly where the guide is
    good.

    :param sampler: returns :class:`WeighedPredictiveResults` when called.
    :param source_samples_slice: which of the sampler's batches to keep (default none).
    :param stored_samples_slice: which of the returned batches to keep (default none).
    :raises TypeError: (on call) if the sampler returns something without log weights.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("x", dist.Normal(1.0, 1.0))
    >>> guide = lambda: ember.sample("x", dist.Normal(0.0, 2.0))
    >>> from ember.infer.predictive import WeighedPredictive
    >>> resampler = MHResampler(WeighedPredictive(model, guide=guide, num_samples=4, parallel=True))
    >>> for _ in range(3):
    ...     samples = resampler()
    >>> samples.samples["x"].shape, int(resampler.get_total_transition_count()) <= 8
    (torch.Size([4]), True)
    """

    def __init__(
        self, sampler: Callable[..., WeighedPredictiveResults], source_samples_slice: slice = slice(0),
        stored_samples_slice: slice = slice(0),
    ) -> None:
        super().__init__()
        self.sampler = sampler
        self.samples: WeighedPredictiveResults | None = None
        self.transition_count = torch.tensor(0, dtype=torch.long)
        self.source_samples: list[WeighedPredictiveResults] = []
        self.source_samples_slice = source_samples_slice
        self.stored_samples: list[WeighedPredictiveResults] = []
        self.stored_samples_slice = stored_samples_slice

    def forward(self, *args: Any, **kwargs: Any) -> WeighedPredictiveResults:
        """One resampling step; arguments go to the sampler."""
        with torch.no_grad():
            new = self.sampler(*args, **kwargs)
            if not isinstance(getattr(new, "log_weights", None), torch.Tensor):
                raise TypeError(
                    f"MHResampler's sampler must return WeighedPredictiveResults with log_weights, got {type(new).__name__}"
                )
            self.source_samples.append(new)
            self.source_samples = self.source_samples[self.source_samples_slice]
            if self.samples is None:
                self.samples = new.clone()
                self.transition_count = torch.zeros_like(new.log_weights, dtype=torch.long)
            else:
                accept_prob = torch.clamp(new.log_weights - self.samples.log_weights, max=0.0).exp()
                accept = torch.rand(*accept_prob.shape) <= accept_prob
                self.transition_count[accept] += 1
                for field in fields(self.samples):
                    old_value, new_value = getattr(self.samples, field.name), getattr(new, field.name)
                    if isinstance(old_value, dict):
                        for key in old_value:
                            old_value[key][accept] = new_value[key][accept]
                    else:
                        old_value[accept] = new_value[accept]
        self.stored_samples.append(self.samples.clone())
        self.stored_samples = self.stored_samples[self.stored_samples_slice]
        return self.samples

    def get_min_sample_transition_count(self) -> torch.Tensor:
        """The fewest transitions any sample has made."""
        return self.transition_count.min()

    def get_total_transition_count(self) -> torch.Tensor:
        """The number of accepted transitions over all samples."""
        return self.transition_count.sum()

    def get_source_samples(self) -> WeighedPredictiveResults:
        """The kept batches the sampler returned, concatenated."""
        return self.get_samples(self.source_samples)

    def get_stored_samples(self) -> WeighedPredictiveResults:
        """The kept batches this resampler returned, concatenated."""
        return self.get_samples(self.stored_samples)

    def get_samples(self, samples: Sequence[WeighedPredictiveResults]) -> WeighedPredictiveResults:
        """``samples`` concatenated field by field (and key by key) along the sample dim."""
        assert self.samples is not None, "MHResampler has not been called yet"
        values: dict[str, Any] = {}
        for field in fields(self.samples):
            value = getattr(self.samples, field.name)
            if isinstance(value, dict):
                values[field.name] = {key: torch.cat([getattr(s, field.name)[key] for s in samples]) for key in value}
            else:
                values[field.name] = torch.cat([getattr(s, field.name) for s in samples])
        return type(self.samples)(**values)
