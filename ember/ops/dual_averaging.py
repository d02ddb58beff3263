"""Nesterov's dual averaging, as Hoffman and Gelman adapt it to tune HMC's step size."""

from __future__ import annotations


import torch

__all__ = ["DualAveraging"]

Scalar = float | torch.Tensor


class DualAveraging:
    """Minimises a quantity whose (noisy) gradient ``g`` is observed at each step.

    For step size adaptation ``x`` is the log step size and ``g`` the gap between the target
    and the observed acceptance probability. ``g`` may be a tensor (one entry per chain).

    :param prox_center: the point iterates are shrunk towards.
    :param t0: stabilises the first iterations.
    :param kappa: the decay exponent of the averaging weights.
    :param gamma: the shrinkage strength.

    >>> da = DualAveraging(prox_center=0.0)
    >>> for _ in range(200):
    ...     x, _ = da.get_state()
    ...     da.step(x - 1.0)  # gradient of (x - 1)^2 / 2
    >>> round(float(da.get_state()[1]), 1)
    1.0
    """

    def __init__(self, prox_center: Scalar = 0.0, t0: float = 10, kappa: float = 0.75, gamma: float = 0.05) -> None:
        self.prox_center = prox_center
        self.t0 = t0
        self.kappa = kappa
        self.gamma = gamma
        self.reset()

    def reset(self) -> None:
        """Restart from the proximal centre."""
        self._x_avg: Scalar = 0.0
        self._g_avg: Scalar = 0.0
        self._t = 0

    def step(self, g: Scalar) -> None:
        """Take one step with the observed gradient ``g``."""
        self._t += 1
        t = self._t
        self._g_avg = (1 - 1 / (t + self.t0)) * self._g_avg + g / (t + self.t0)
        x_t = self.prox_center - (t**0.5) / self.gamma * self._g_avg
        weight_t = t ** (-self.kappa)
        self._x_avg = (1 - weight_t) * self._x_avg + weight_t * x_t

    def get_state(self) -> tuple[Scalar, Scalar]:
        """The latest iterate and the weighted average of the iterates."""
        x_t = self.prox_center - (self._t**0.5) / self.gamma * self._g_avg
        return x_t, self._x_avg


