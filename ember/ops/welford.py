"""Streaming (Welford) estimates of a covariance, used to adapt HMC's mass matrix.

Samples may carry leading batch dimensions (one row per chain when chains run vectorized):
the estimate is then computed independently for each batch entry.
"""

from __future__ import annotations

import torch

__all__ = ["WelfordArrowheadCovariance", "WelfordCovariance"]


def _shrink(cov: torch.Tensor, n: int, diagonal: bool) -> torch.Tensor:
    # Stan's regularisation: pull the estimate towards 1e-3 * I while few samples are seen.
    scaled = cov * (n / (n + 5.0))
    shrink = 1e-3 * (5.0 / (n + 5.0))
    if diagonal:
        return scaled + shrink
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    return scaled + shrink * eye


class WelfordCovariance:
    """Running mean and (diagonal or dense) covariance of a stream of vectors.

    :param diagonal: estimate only the variances (``True``) or the full covariance.

    >>> w = WelfordCovariance(diagonal=True)
    >>> for x in torch.tensor([[1.0], [2.0], [3.0]]):
    ...     w.update(x)
    >>> w.get_covariance(regularize=False)
    tensor([1.])
    """

    def __init__(self, diagonal: bool = True) -> None:
        self.diagonal = diagonal
        self.reset()

    def reset(self) -> None:
        """Forget every sample seen."""
        self._mean: torch.Tensor | float = 0.0
        self._m2: torch.Tensor | float = 0.0
        self.n_samples = 0

    def update(self, sample: torch.Tensor) -> None:
        """Add one sample (shape ``(..., D)``) to the estimate."""
        self.n_samples += 1
        delta_pre = sample - self._mean
        self._mean = self._mean + delta_pre / self.n_samples
        delta_post = sample - self._mean
        if self.diagonal:
            self._m2 = self._m2 + delta_pre * delta_post
        else:
            self._m2 = self._m2 + delta_post.unsqueeze(-1) * delta_pre.unsqueeze(-2)

    def get_covariance(self, regularize: bool = True) -> torch.Tensor:
        """The sample covariance (variances if diagonal), optionally shrunk towards ``1e-3 I``.

        :raises RuntimeError: with fewer than two samples.
        """
        if self.n_samples < 2:
            raise RuntimeError("Insufficient samples to estimate covariance")
        assert isinstance(self._m2, torch.Tensor)
        cov = self._m2 / (self.n_samples - 1)
        return _shrink(cov, self.n_samples, self.diagonal) if regularize else cov


class WelfordArrowheadCovariance:
    """Running covariance restricted to arrowhead structure: dense first ``head_size`` rows
    (and columns), diagonal elsewhere.

    :param head_size: the number of leading coordinates with full covariance.

    >>> w = WelfordArrowheadCovariance(head_size=1)
    >>> for x in torch.tensor([[0.0, 1.0], [2.0, 3.0], [1.0, 5.0]]):
    ...     w.update(x)
    >>> top, bottom_diag = w.get_covariance(regularize=False)
    >>> top, bottom_diag
    (tensor([[1., 1.]]), tensor([4.]))
    """

    def __init__(self, head_size: int = 0) -> None:
        self.head_size = head_size
        self.reset()

    def reset(self) -> None:
        """Forget every sample seen."""
        self._mean: torch.Tensor | float = 0.0
        self._m2_top: torch.Tensor | float = 0.0
        self._m2_bottom_diag: torch.Tensor | float = 0.0
        self.n_samples = 0

    def update(self, sample: torch.Tensor) -> None:
        """Add one sample (shape ``(..., D)``) to the estimate."""
        self.n_samples += 1
        delta_pre = sample - self._mean
        self._mean = self._mean + delta_pre / self.n_samples
        delta_post = sample - self._mean
        h = self.head_size
        self._m2_top = self._m2_top + delta_post[..., :h, None] * delta_pre[..., None, :]
        self._m2_bottom_diag = self._m2_bottom_diag + delta_post[..., h:] * delta_pre[..., h:]

    def get_covariance(self, regularize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(top, bottom_diag)`` parts of the arrowhead covariance.

        :raises RuntimeError: with fewer than two samples.
        """
        if self.n_samples < 2:
            raise RuntimeError("Insufficient samples to estimate covariance")
        assert isinstance(self._m2_top, torch.Tensor) and isinstance(self._m2_bottom_diag, torch.Tensor)
        n = self.n_samples
        top = self._m2_top / (n - 1)
        bottom_diag = self._m2_bottom_diag / (n - 1)
        if regularize:
            h = self.head_size
            top = top * (n / (n + 5.0))
            eye = torch.eye(h, top.shape[-1], dtype=top.dtype, device=top.device)
            top = top + 1e-3 * (5.0 / (n + 5.0)) * eye
            bottom_diag = _shrink(bottom_diag, n, True)
        return top, bottom_diag
