"""Predictive scores (WAIC, CRPS, energy score) and the generalized Pareto tail fit behind
PSIS; public in :mod:`ember.ops.stats`."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["crps_empirical", "energy_score_empirical", "fit_generalized_pareto", "waic"]


def _weights_along(log_weights: torch.Tensor, input: torch.Tensor, dim: int) -> torch.Tensor:
    """``log_weights`` shaped to broadcast against ``input`` along ``dim`` (non-negative)."""
    if log_weights.dim() != 1 or log_weights.size(0) != input.size(dim):
        raise RuntimeError(
            f"waic: log_weights of shape {tuple(log_weights.shape)} must have one entry per sample "
            f"along dim={dim} of input shape {tuple(input.shape)}"
        )
    return log_weights.reshape((-1,) + (1,) * (input.dim() - dim - 1))


def _weighted_mean(input: torch.Tensor, log_weights: torch.Tensor, dim: int, keepdim: bool) -> torch.Tensor:
    shaped = _weights_along(log_weights, input, dim)
    relative = (shaped - shaped.max(dim=0).values).exp()
    return (input * relative).sum(dim=dim, keepdim=keepdim) / relative.sum()


def waic(
    input: torch.Tensor, log_weights: torch.Tensor | None = None, pointwise: bool = False, dim: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The widely applicable (Watanabe-Akaike) information criterion and its effective number
    of parameters, from pointwise log likelihoods of posterior samples (Vehtari & Gelman).

    ``waic = -2 * (lpd - p_waic)``, where ``lpd`` is the log of the (weighted) mean likelihood
    and ``p_waic`` the (weighted, unbiased) variance of the log likelihood over samples.

    :param input: log likelihoods, with the posterior samples along ``dim``.
    :param log_weights: the log weights of the samples (equal weights by default).
    :param pointwise: return the per-datum values instead of their sums.
    :param dim: the sample dim of ``input``.
    :returns: ``(waic, p_waic)``.
    :raises RuntimeError: if ``log_weights`` does not have one entry per sample.

    >>> waic(torch.zeros(10, 3))
    (tensor(0.), tensor(0.))
    """
    dim = input.dim() + dim if dim < 0 else dim
    if log_weights is None:
        log_weights = torch.zeros(input.size(dim), dtype=input.dtype, device=input.device)
    shaped = _weights_along(log_weights, input, dim)
    lpd = (input + shaped).logsumexp(dim=dim) - log_weights.logsumexp(dim=0)
    count = log_weights.size(0)
    deviation = input - _weighted_mean(input, log_weights, dim, keepdim=True)
    p_waic = _weighted_mean(deviation.square(), log_weights, dim, keepdim=False) * (count / (count - 1.0))
    criterion = -2 * (lpd - p_waic)
    return (criterion, p_waic) if pointwise else (criterion.sum(), p_waic.sum())


def fit_generalized_pareto(X: torch.Tensor) -> tuple[float, float]:
    """The shape ``k`` and scale ``sigma`` of a generalized Pareto distribution fitted to
    the samples ``X``, by Zhang & Stephens' (2009) empirical Bayes estimator with the
    weakly informative prior on ``k`` of Vehtari, Gelman & Gabry's PSIS.

    The estimator averages the profile-likelihood optimum ``b = k / sigma`` over a grid of
    ``30 + floor(sqrt(N))`` candidates, weighting each by its likelihood; it runs in double
    precision.

    :param X: the samples, a one-dimensional tensor of positive values.
    :returns: ``(k, sigma)`` as floats.
    :raises ValueError: if ``X`` is not a one-dimensional tensor.

    >>> torch.manual_seed(0); u = torch.rand(20000, dtype=torch.float64)
    <torch._C.Generator object at ...>
    >>> k, sigma = fit_generalized_pareto((u.pow(-0.5) - 1) / 0.5)  # k = 0.5, sigma = 1
    >>> round(k, 1), round(sigma, 1)
    (0.5, 1.0)
    """
    if not isinstance(X, torch.Tensor) or X.dim() != 1:
        shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ValueError(f"Input X must be a 1-dimensional torch tensor, got {shape}")
    x = X.double().sort().values
    n = x.size(0)
    grid_size = 30 + int(math.sqrt(n))
    grid = torch.arange(1, grid_size + 1, dtype=torch.double)
    bs = (1.0 - math.sqrt(grid_size) / (grid - 0.5).sqrt()) / (3.0 * x[int(n / 4 - 0.5)]) + 1 / x[-1]
    ks = torch.log1p(-bs.unsqueeze(-1) * x).mean(-1)
    log_lik = n * (torch.log(-bs / ks) - (ks + 1.0))
    # Each candidate's posterior weight 1 / sum_j exp(L_j - L_i), without overflowing exp(L).
    weights = 1.0 / (log_lik - log_lik.unsqueeze(-1)).exp().sum(-1)
    keep = weights > 1.0e-30
    weights = weights[keep] / weights[keep].sum()
    b = float((bs[keep] * weights).sum())
    k = float(torch.log1p(-b * x).mean())
    sigma = -k / b
    return k * n / (n + 10.0) + 5.0 / (n + 10.0), sigma


def crps_empirical(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The negatively oriented continuous ranked probability score of the sample forecast
    ``pred`` against ``truth``: ``E|pred - truth| - E|pred - pred'| / 2`` (Gneiting &
    Raftery, 2007), in ``O(n log n)`` from the sorted samples.

    :param pred: samples of the forecast, of shape ``(num_samples,) + truth.shape`` (with
        extra singleton dims on the left of ``truth.shape`` allowed).
    :param truth: the observations.
    :returns: the score, of ``truth``'s shape (broadcast with ``pred.shape[1:]``).
    :raises ValueError: if ``pred`` does not have one extra sample dim on the left.

    >>> crps_empirical(torch.tensor([0.0, 2.0]), torch.tensor(1.0))
    tensor(0.5000)
    """
    if pred.shape[1:] != (1,) * (pred.dim() - truth.dim() - 1) + truth.shape:
        raise ValueError(
            "Expected pred to have one extra sample dim on left. "
            f"Actual shapes: {pred.shape} versus {truth.shape}"
        )
    n = pred.size(0)
    if n == 1:
        return (pred[0] - truth).abs()
    ordered = pred.sort(dim=0).values
    gaps = ordered[1:] - ordered[:-1]
    # The gap between order statistics i and i + 1 separates i * (n - i) ordered pairs.
    ranks = torch.arange(1, n, dtype=pred.dtype, device=pred.device)
    pair_counts = (ranks * (n - ranks)).reshape((n - 1,) + (1,) * (gaps.dim() - 1))
    return (pred - truth).abs().mean(0) - (gaps * pair_counts).sum(0) / n**2


def energy_score_empirical(
    pred: torch.Tensor,
    truth: torch.Tensor,
    pred_batch_size: int | None = None,
    cdist: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.cdist,
) -> torch.Tensor:
    """The negatively oriented energy score of multivariate sample forecasts:
    ``E||pred - truth|| - E||pred - pred'|| / 2`` (Gneiting & Raftery, 2007, eq. 22), in time
    quadratic in the number of samples. For one-dimensional samples it is the CRPS.

    :param pred: samples of shape ``batch_shape + (num_samples, event_size)``.
    :param truth: observations of shape ``batch_shape + (num_truths, event_size)`` or
        ``batch_shape + (event_size,)``.
    :param pred_batch_size: compare at most this many samples at once, to bound memory.
    :param cdist: the pairwise Euclidean distance function.
    :returns: the score, of shape ``batch_shape + (num_truths,)`` (or ``batch_shape``).
    :raises ValueError: if ``pred`` has neither the dims of ``truth`` nor one more.

    >>> energy_score_empirical(torch.tensor([[0.0], [2.0]]), torch.tensor([1.0]))
    tensor(0.5000)
    """
    if pred.dim() == truth.dim() + 1:
        single_truth = True
        truth = truth.unsqueeze(-2)
    elif pred.dim() == truth.dim():
        single_truth = False
    else:
        raise ValueError(
            "Expected pred to have at most one extra dim versus truth."
            f"Actual shapes: {pred.shape} versus {truth.shape}"
        )
    if pred_batch_size is None:
        to_truth = cdist(pred, truth).mean(dim=-2)
        spread = cdist(pred, pred).mean(dim=[-1, -2]).unsqueeze(-1)
        score = to_truth - 0.5 * spread
    else:
        n = pred.size(-2)
        chunks = torch.split(pred, pred_batch_size, dim=-2)
        to_truth = torch.stack([cdist(chunk, truth).sum(dim=-2) for chunk in chunks]).sum(0) / n
        spread = torch.stack([cdist(left, right).sum(dim=[-1, -2]) for left in chunks for right in chunks])
        score = to_truth - 0.5 * (spread.sum(0) / n**2).unsqueeze(-1)
    return score.squeeze(-1) if single_truth else score
