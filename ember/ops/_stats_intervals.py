"""Quantiles, credible intervals and resampling of samples; public in :mod:`ember.ops.stats`."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

__all__ = ["hpdi", "pi", "quantile", "resample", "weighed_quantile"]


def _probs_tensor(
    probs: float | Sequence[float] | torch.Tensor, input: torch.Tensor, caller: str
) -> torch.Tensor:
    if isinstance(probs, (numbers.Number, list, tuple)):
        probs = torch.tensor(probs, dtype=input.dtype, device=input.device)
    if not isinstance(probs, torch.Tensor):
        raise TypeError(f"{caller}: probs must be a number, a list, a tuple or a tensor, got {type(probs).__name__}")
    if probs.dim() > 1:
        raise IndexError(f"{caller}: probs must be a scalar or a vector, got shape {tuple(probs.shape)}")
    if bool(((probs < 0) | (probs > 1)).any()):
        raise IndexError(f"{caller}: probs must lie in [0, 1], got {probs.tolist()}")
    return probs


def resample(input: torch.Tensor, num_samples: int, dim: int = 0, replacement: bool = False) -> torch.Tensor:
    """``num_samples`` entries of ``input`` along ``dim``, drawn uniformly at random.

    :param input: the samples to draw from.
    :param num_samples: how many to draw.
    :param dim: the dim to draw along.
    :param replacement: draw with replacement (without, ``num_samples`` must not exceed
        ``input.size(dim)``).
    :returns: ``input`` with ``num_samples`` entries along ``dim``.

    >>> resample(torch.arange(5.0), 5).sort().values
    tensor([0., 1., 2., 3., 4.])
    """
    # Uniform weights through torch.multinomial: the same draws as Pyro under the same seed.
    weights = torch.ones(input.size(dim), dtype=input.dtype, device=input.device)
    indices = torch.multinomial(weights, num_samples, replacement)
    return input.index_select(dim, indices)


def quantile(input: torch.Tensor, probs: float | Sequence[float] | torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Quantiles of samples along ``dim``, interpolating linearly between order statistics
    (the quantile at ``p`` sits at fractional rank ``p * (N - 1)``).

    :param input: the samples.
    :param probs: the quantile levels in ``[0, 1]``: a number, a sequence or a tensor of at
        most one dim.
    :param dim: the dim holding the samples.
    :returns: ``input`` with ``dim`` replaced by one entry per level, or removed when
        ``probs`` is a scalar.
    :raises IndexError: on levels outside ``[0, 1]``.

    >>> quantile(torch.arange(11.0), [0.1, 0.55])
    tensor([1.0000, 5.5000])
    """
    probs = _probs_tensor(probs, input, "quantile")
    ordered = input.sort(dim).values
    last = input.size(dim) - 1
    rank = probs.reshape(-1) * last
    below = rank.long()
    above = (below + 1).clamp(max=last)
    frac_shape = [1] * input.dim()
    frac_shape[dim] = rank.numel()
    frac = (rank - below.to(rank.dtype)).reshape(frac_shape)
    result = (1 - frac) * ordered.index_select(dim, below) + frac * ordered.index_select(dim, above)
    return result.squeeze(dim) if probs.dim() == 0 else result


def weighed_quantile(
    input: torch.Tensor,
    probs: list[float] | tuple[float, ...] | torch.Tensor,
    log_weights: torch.Tensor,
    dim: int = 0,
) -> torch.Tensor:
    """Quantiles of weighted samples along ``dim``.

    The samples are sorted, their cumulative normalized weights rescaled to run from 0 (the
    smallest sample) to 1 (the largest), and each level is interpolated linearly between the
    two samples whose rescaled cumulative weights bracket it.

    :param input: the samples.
    :param probs: the quantile levels in ``[0, 1]``.
    :param log_weights: the unnormalized log weight of each sample, of length
        ``input.size(dim)``.
    :param dim: the dim holding the samples.
    :returns: ``input`` with ``dim`` replaced by one entry per level.
    :raises IndexError: if ``log_weights`` does not have one entry per sample.

    >>> x = torch.tensor([[10.0, 50.0, 40.0], [20.0, 30.0, 0.0]])
    >>> weighed_quantile(x, [0.2, 0.8], torch.tensor([0.4, 0.5, 0.1]).log(), dim=-1)
    tensor([[40.4000, 47.6000],
            [ 9.0000, 26.4000]])
    """
    dim = dim % input.dim() if input.dim() else dim
    if log_weights.dim() != 1 or log_weights.size(0) != input.size(dim):
        raise IndexError(
            f"weighed_quantile: log_weights of shape {tuple(log_weights.shape)} must have one entry "
            f"per sample along dim={dim} of input shape {tuple(input.shape)}"
        )
    levels = _probs_tensor(probs, input, "weighed_quantile").reshape(-1)
    weights = (log_weights - log_weights.logsumexp(0)).exp()
    ordered, order = input.movedim(dim, -1).sort(-1)
    cum = weights[order].cumsum(-1)
    cum = cum - cum[..., :1]
    cum = cum / cum.max(-1, keepdim=True).values
    targets = levels.to(cum.dtype).expand(cum.shape[:-1] + levels.shape).contiguous()
    # The first sample whose rescaled cumulative weight exceeds the level, kept in range.
    above = torch.searchsorted(cum.contiguous(), targets, right=True).clamp(max=input.size(dim) - 1)
    below = (above - 1).clamp(min=0)
    cum_above, cum_below = cum.gather(-1, above), cum.gather(-1, below)
    frac_below = (cum_above - targets) / (cum_above - cum_below)
    result = frac_below * ordered.gather(-1, below) + (1 - frac_below) * ordered.gather(-1, above)
    return result.movedim(-1, dim)


def pi(input: torch.Tensor, prob: float, dim: int = 0) -> torch.Tensor:
    """The central (percentile) interval holding ``prob`` of the samples, with equal mass
    ``(1 - prob) / 2`` in each tail.

    :param input: the samples.
    :param prob: the mass inside the interval.
    :param dim: the dim holding the samples.
    :returns: ``input`` with ``dim`` replaced by the interval's two ends.

    >>> pi(torch.arange(101.0), 0.9)
    tensor([ 5., 95.])
    """
    return quantile(input, [(1 - prob) / 2, (1 + prob) / 2], dim)


def hpdi(input: torch.Tensor, prob: float, dim: int = 0) -> torch.Tensor:
    """The highest posterior density interval: the narrowest interval between two samples
    that spans ``int(prob * N)`` sample gaps (the first such one on ties).

    :param input: the samples.
    :param prob: the mass inside the interval, in ``[0, 1)``.
    :param dim: the dim holding the samples.
    :returns: ``input`` with ``dim`` replaced by the interval's two ends.
    :raises IndexError: if ``int(prob * N)`` leaves no interval inside the samples.

    >>> hpdi(torch.tensor([0.0, 0.1, 0.2, 0.3, 5.0]), 0.6)
    tensor([0.0000, 0.3000])
    """
    ordered = input.sort(dim).values
    count = input.size(dim)
    span = int(prob * count)
    if not 0 <= span < count:
        raise IndexError(
            f"hpdi: prob={prob} spans {span} of the {count} samples along dim={dim} of input "
            f"shape {tuple(input.shape)}; it must span fewer than all of them"
        )
    widths = ordered.narrow(dim, span, count - span) - ordered.narrow(dim, 0, count - span)
    start = widths.argmin(dim, keepdim=True)
    return ordered.gather(dim, torch.cat([start, start + span], dim))
