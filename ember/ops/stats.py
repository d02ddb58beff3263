"""Sample statistics for MCMC and forecasting, at Pyro's ``pyro.ops.stats`` path.

Chain diagnostics (:func:`autocorrelation`, :func:`autocovariance`,
:func:`effective_sample_size`, :func:`gelman_rubin`, :func:`split_gelman_rubin`) take a
tensor with a chain dim and a sample dim and reduce both away. Interval and quantile
summaries (:func:`quantile`, :func:`weighed_quantile`, :func:`pi`, :func:`hpdi`,
:func:`resample`) live in :mod:`ember.ops._stats_intervals`; scores and tail fits
(:func:`waic`, :func:`crps_empirical`, :func:`energy_score_empirical`,
:func:`fit_generalized_pareto`) in :mod:`ember.ops._stats_scores`. All of them are public
here, with Pyro's signatures.

Malformed shapes raise :class:`AssertionError`, as Pyro's ``assert`` statements do, but with
a message naming the argument and the shape (and also under ``python -O``).
"""

from __future__ import annotations

import torch

from ember.ops._stats_intervals import hpdi, pi, quantile, resample, weighed_quantile
from ember.ops._stats_scores import crps_empirical, energy_score_empirical, fit_generalized_pareto, waic

__all__ = [
    "autocorrelation",
    "autocovariance",
    "crps_empirical",
    "effective_sample_size",
    "energy_score_empirical",
    "fit_generalized_pareto",
    "gelman_rubin",
    "hpdi",
    "pi",
    "quantile",
    "resample",
    "split_gelman_rubin",
    "waic",
    "weighed_quantile",
]

_FAST_LEN_CACHE: dict[int, int] = {}


def _next_fast_len(size: int) -> int:
    """The smallest ``n >= size`` whose only prime factors are 2, 3 and 5 (a fast FFT length)."""
    cached = _FAST_LEN_CACHE.get(size)
    if cached is not None:
        return cached
    candidate = size
    while True:
        rest = candidate
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            _FAST_LEN_CACHE[size] = candidate
            return candidate
        candidate += 1


def _normalize_dim(input: torch.Tensor, dim: int, name: str) -> int:
    ndim = input.dim()
    if not -ndim <= dim < ndim:
        raise IndexError(f"{name}={dim} is out of range for an input of shape {tuple(input.shape)}")
    return dim % ndim


def _chains_first(
    input: torch.Tensor, chain_dim: int, sample_dim: int, min_samples: int, caller: str
) -> torch.Tensor:
    """``input`` with its sample dim moved to 0 and its chain dim to 1, after checking both."""
    shape = tuple(input.shape)
    if input.dim() < 2:
        raise AssertionError(f"{caller}: input must have a chain dim and a sample dim, got shape {shape}")
    chain_dim = _normalize_dim(input, chain_dim, "chain_dim")
    sample_dim = _normalize_dim(input, sample_dim, "sample_dim")
    if chain_dim == sample_dim:
        raise AssertionError(f"{caller}: chain_dim and sample_dim are the same dim {chain_dim} of shape {shape}")
    if input.size(sample_dim) < min_samples:
        raise AssertionError(
            f"{caller}: needs at least {min_samples} samples along sample_dim={sample_dim}, got shape {shape}"
        )
    return input.movedim((sample_dim, chain_dim), (0, 1))


def _variance_estimates(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The within-chain variance W and the pooled estimate ``(N-1)/N W + B/N`` of the
    posterior variance, for ``samples`` of shape ``(N, C, ...)``.

    With a single chain there is no between-chain term, and W is replaced by the pooled
    estimate so that the effective sample size reduces to the one-chain autocorrelation.
    """
    num_samples = samples.size(0)
    within = samples.var(dim=0).mean(dim=0)
    pooled = within * ((num_samples - 1) / num_samples)
    if samples.size(1) == 1:
        return pooled, pooled
    return within, pooled + samples.mean(dim=0).var(dim=0)


def gelman_rubin(input: torch.Tensor, chain_dim: int = 0, sample_dim: int = 1) -> torch.Tensor:
    """The potential scale reduction factor R-hat of chains of samples.

    :param input: samples with a chain dim and a sample dim (each of size at least 2).
    :param chain_dim: the chain dim of ``input``.
    :param sample_dim: the sample dim of ``input``.
    :returns: R-hat per site: ``input``'s shape without the chain and sample dims.
    :raises AssertionError: on fewer than two chains or samples.

    >>> chains = torch.stack([torch.zeros(50), torch.ones(50)]) + 0.1 * torch.randn(2, 50)
    >>> bool(gelman_rubin(chains) > 2.0)
    True
    """
    samples = _chains_first(input, chain_dim, sample_dim, 2, "gelman_rubin")
    if samples.size(1) < 2:
        raise AssertionError(
            f"gelman_rubin: needs at least 2 chains along chain_dim={chain_dim}, got shape {tuple(input.shape)}"
        )
    within, pooled = _variance_estimates(samples)
    return (pooled / within).sqrt()


def split_gelman_rubin(input: torch.Tensor, chain_dim: int = 0, sample_dim: int = 1) -> torch.Tensor:
    """R-hat after splitting each chain into its first and last halves (a middle sample of an
    odd-length chain is dropped), which also detects a trend within a single chain.

    :param input: samples with a chain dim and a sample dim of size at least 4.
    :param chain_dim: the chain dim of ``input``.
    :param sample_dim: the sample dim of ``input``.
    :returns: split R-hat per site: ``input``'s shape without the chain and sample dims.
    :raises AssertionError: on fewer than four samples.

    >>> trend = torch.linspace(0.0, 1.0, 100).reshape(1, 100)
    >>> bool(split_gelman_rubin(trend) > 1.5)
    True
    """
    samples = _chains_first(input, chain_dim, sample_dim, 4, "split_gelman_rubin")
    half = samples.size(0) // 2
    split = torch.cat([samples[:half], samples[-half:]], dim=1)
    within, pooled = _variance_estimates(split)
    return (pooled / within).sqrt()


def autocorrelation(input: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The autocorrelation of samples along ``dim`` at every lag, by FFT.

    The lag-``k`` autocovariance is averaged over the ``N - k`` available pairs and divided
    by the lag-0 value; a constant sequence has autocorrelation 1 at every lag.

    :param input: the samples.
    :param dim: the dim holding the sequence.
    :returns: a tensor of ``input``'s shape whose index ``k`` along ``dim`` is the lag-``k``
        autocorrelation.
    :raises AssertionError: if ``dim`` is empty.

    >>> autocorrelation(torch.tensor([1.0, -1.0, 1.0, -1.0])).round().tolist()
    [1.0, -1.0, 1.0, -1.0]
    """
    dim = _normalize_dim(input, dim, "dim")
    length = input.size(dim)
    if length == 0:
        raise AssertionError(f"autocorrelation: dim={dim} of input shape {tuple(input.shape)} is empty")
    # Zero-padding to twice a fast length turns the FFT's circular correlation into a linear one.
    fft_len = 2 * _next_fast_len(length)
    signal = input.movedim(dim, -1)
    centered = signal - signal.mean(dim=-1, keepdim=True)
    spectrum = torch.fft.rfft(centered, n=fft_len)
    power = spectrum.real.square() + spectrum.imag.square()
    lagged = torch.fft.irfft(power, n=fft_len)[..., :length]
    lagged = lagged / torch.arange(length, 0, -1, dtype=input.dtype, device=input.device)
    lag0 = lagged[..., :1]
    result = lagged / lag0.clamp(min=torch.finfo(lag0.dtype).tiny)
    result = torch.where(lag0 == 0, torch.ones((), dtype=result.dtype, device=result.device), result)
    return result.movedim(-1, dim)


def autocovariance(input: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The autocovariance of samples along ``dim`` at every lag: :func:`autocorrelation`
    scaled by the (biased) variance along ``dim``.

    :param input: the samples.
    :param dim: the dim holding the sequence.
    :returns: a tensor of ``input``'s shape whose index ``k`` along ``dim`` is the lag-``k``
        autocovariance.

    >>> autocovariance(torch.tensor([1.0, -1.0, 1.0, -1.0])).round().tolist()
    [1.0, -1.0, 1.0, -1.0]
    """
    return autocorrelation(input, dim) * input.var(dim, unbiased=False, keepdim=True)


def effective_sample_size(input: torch.Tensor, chain_dim: int = 0, sample_dim: int = 1) -> torch.Tensor:
    """The effective sample size of chains of samples (Stan's estimator).

    The combined autocorrelation ``rho_k`` of all chains is summed in consecutive pairs;
    Geyer's initial positive sequence truncates the pair sums at the first negative one and
    makes them non-increasing, and the ESS is ``C * N / (-1 + 2 * sum(pair sums))``.

    :param input: samples with a chain dim and a sample dim of size at least 2.
    :param chain_dim: the chain dim of ``input``.
    :param sample_dim: the sample dim of ``input``.
    :returns: the ESS per site: ``input``'s shape without the chain and sample dims.
    :raises AssertionError: on fewer than two samples.

    >>> ess = effective_sample_size(torch.randn(4, 1000))
    >>> 3000.0 < float(ess) < 5000.0
    True
    """
    samples = _chains_first(input, chain_dim, sample_dim, 2, "effective_sample_size")
    num_samples, num_chains = samples.size(0), samples.size(1)
    within, pooled = _variance_estimates(samples)
    mean_autocov = autocovariance(samples, dim=0).mean(dim=1)
    rho = (pooled - within + mean_autocov) / pooled
    rho = torch.cat([torch.ones_like(rho[:1]), rho[1:]])
    num_pairs = num_samples // 2
    pair_sums = rho[: 2 * num_pairs].reshape((num_pairs, 2) + rho.shape[1:]).sum(dim=1)
    # Clamping at zero then taking the running minimum zeroes every pair from the first
    # negative one on: Geyer's initial monotone positive sequence.
    tail = torch.cummin(pair_sums[1:].clamp(min=0), dim=0).values.sum(dim=0)
    tau = -1 + 2 * pair_sums[0] + 2 * tail
    return num_chains * num_samples / tau
