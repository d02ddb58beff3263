"""Random-walk Metropolis with a Gaussian proposal in unconstrained space."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ember.infer.autoguide.initialization import init_to_uniform
from ember.infer.mcmc._chains import ChainKernel, where
from ember.infer.mcmc.adaptation import WarmupAdapter

__all__ = ["RandomWalkKernel"]


class RandomWalkKernel(ChainKernel):
    """Random-walk Metropolis: propose ``z + step_size * N(0, I)``, accept by the potential.

    During warmup the log step size moves towards ``target_accept_prob`` at a decaying rate.

    :param model: the model.
    :param init_step_size: the initial proposal scale (a positive float).
    :param target_accept_prob: the acceptance probability warmup aims at, in ``(0, 1)``.
    """

    def __init__(self, model: Callable[..., Any], init_step_size: float = 0.1, target_accept_prob: float = 0.234) -> None:
        if not isinstance(init_step_size, float) or init_step_size <= 0.0:
            raise ValueError("init_step_size must be a positive float.")
        if not isinstance(target_accept_prob, float) or not 0.0 < target_accept_prob < 1.0:
            raise ValueError("target_accept_prob must be a float in the interval (0, 1).")
        self.model = model
        self.potential_fn = None
        self.transforms = None
        self.init_step_size = init_step_size
        self.target_accept_prob = target_accept_prob
        self._max_plate_nesting: int | None = None
        self._jit_compile = False
        self._init_strategy: Callable[[Any], torch.Tensor] = init_to_uniform
        self._max_sliced_energy = math.inf
        self._adapter = WarmupAdapter()
        self._initial_params: dict[str, torch.Tensor] | None = None
        self._init_chain_state()
        self._log_step_size = torch.full((1,), math.log(init_step_size))

    def _configure_adapter(self, dtype: torch.dtype) -> None:
        self._log_step_size = torch.full((self._num_chains,), math.log(self.init_step_size), dtype=dtype)

    @property
    def step_size(self) -> float:
        """The current proposal scale (the first chain's)."""
        return math.exp(float(self._log_step_size[0]))

    def _transition(self) -> None:
        assert self._z is not None and self._flat is not None
        scale = self._log_step_size.exp()[:, None]
        proposal = self._z + scale * self._normal()
        pe, grad = self._flat.value_and_grad(proposal)
        delta = pe - self._pe
        delta = torch.where(torch.isnan(delta), math.inf, delta)
        accept_prob = (-delta).exp().clamp(max=1.0)
        accepted = self._uniform(1)[:, 0] < accept_prob
        self._z = where(accepted, proposal, self._z)
        self._pe = where(accepted, pe, self._pe)
        self._grad = where(accepted, grad, self._grad)
        if self._t <= self._warmup_steps:
            speed = max(0.001, 0.1 / math.sqrt(1 + self._t))
            self._log_step_size = self._log_step_size + speed * (accept_prob - self.target_accept_prob)
        stats = {"diverging": torch.zeros_like(accepted), "step_size": scale[:, 0].clone(), "accept_prob": accept_prob}
        self._t += 1
        if self._t > self._warmup_steps:
            n = self._t - self._warmup_steps
            self._accept_cnt = self._accept_cnt + accepted.to(self._accept_cnt.dtype)
            self._draw_stats.append(stats)
        else:
            n = self._t
        self._mean_accept_prob = self._mean_accept_prob + (accept_prob - self._mean_accept_prob) / n

    def diagnostics(self) -> dict[str, Any]:
        """The acceptance rate after warmup."""
        n = max(self._t - self._warmup_steps, 1)
        rate = (self._accept_cnt / n).tolist()
        return {"acceptance rate": rate[0] if self._num_chains == 1 else rate}
