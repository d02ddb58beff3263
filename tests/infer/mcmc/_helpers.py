"""Shared checks for the MCMC tests: Monte Carlo tolerances from the effective sample size."""

from __future__ import annotations

import torch

from ember.ops.stats import effective_sample_size


def assert_moments(samples: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, n_se: float = 4.0) -> None:
    """``samples`` (``(chains, draws, ...)``) have the given mean and variance within ``n_se``
    Monte Carlo standard errors, each computed from the effective sample size."""
    ess = effective_sample_size(samples.double(), chain_dim=0, sample_dim=1).clamp(min=10.0)
    flat = samples.reshape((-1,) + samples.shape[2:]).double()
    mean, var = mean.double(), var.double()
    se_mean = (var / ess).sqrt()
    centred = flat - flat.mean(0)
    m4 = (centred**4).mean(0)
    se_var = ((m4 - flat.var(0) ** 2).clamp(min=0) / ess).sqrt()
    err_mean = (flat.mean(0) - mean).abs()
    err_var = (flat.var(0) - var).abs()
    assert bool((err_mean < n_se * se_mean).all()), f"mean {flat.mean(0)} vs {mean} (se {se_mean}, ess {ess})"
    assert bool((err_var < n_se * se_var).all()), f"variance {flat.var(0)} vs {var} (se {se_var}, ess {ess})"
