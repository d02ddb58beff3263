"""Hamiltonian Monte Carlo with a fixed trajectory length, on a compiled potential."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch.distributions.transforms import Transform

from ember.infer.autoguide.initialization import init_to_uniform
from ember.infer.mcmc._chains import ChainKernel, where
from ember.infer.mcmc.adaptation import WarmupAdapter

__all__ = ["HMC"]

Params = dict[str, torch.Tensor]


class HMC(ChainKernel):
    """Hamiltonian Monte Carlo: leapfrog trajectories of ``num_steps`` steps, then a
    Metropolis correction.

    The model is run through the handlers once; the kernel then steps a recorded graph of the
    potential and its gradient (see :mod:`ember.infer.mcmc.potential`), falling back to running
    the model at each step when its structure is not static.

    :param model: the model (give this or ``potential_fn``).
    :param potential_fn: a potential energy over a dict of unconstrained values (then
        ``initial_params`` must be given to :class:`~ember.infer.mcmc.api.MCMC`).
    :param step_size: the initial leapfrog step size.
    :param trajectory_length: the integration time (default ``2 pi``); ``num_steps`` is
        ``max(1, trajectory_length / step_size)``.
    :param num_steps: a fixed number of leapfrog steps (overrides ``trajectory_length``).
    :param adapt_step_size: adapt the step size during warmup.
    :param adapt_mass_matrix: adapt the mass matrix during warmup.
    :param full_mass: dense mass matrix (``True``), diagonal (``False``), or a list of tuples
        of site names, each a dense block.
    :param transforms: per site, the transform to unconstrained space.
    :param max_plate_nesting: the number of plates (for enumeration).
    :param jit_compile: run the recorded potential graph through :func:`torch.compile`.
    :param jit_options: accepted for Pyro compatibility.
    :param ignore_jit_warnings: accepted for Pyro compatibility.
    :param target_accept_prob: the acceptance probability step size adaptation aims at.
    :param init_strategy: how initial values are chosen.
    :param min_stepsize: the smallest step size the step size search may give.
    :param max_stepsize: the largest.
    """

    def __init__(
        self,
        model: Callable[..., Any] | None = None,
        potential_fn: Callable[[Params], torch.Tensor] | None = None,
        step_size: float = 1,
        trajectory_length: float | None = None,
        num_steps: int | None = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        full_mass: bool | list[tuple[str, ...]] = False,
        transforms: Mapping[str, Transform] | None = None,
        max_plate_nesting: int | None = None,
        jit_compile: bool = False,
        jit_options: Mapping[str, Any] | None = None,
        ignore_jit_warnings: bool = False,
        target_accept_prob: float = 0.8,
        init_strategy: Callable[[Any], torch.Tensor] = init_to_uniform,
        *,
        min_stepsize: float = 1e-10,
        max_stepsize: float = 1e10,
    ) -> None:
        if not ((model is None) ^ (potential_fn is None)):
            raise ValueError("Only one of `model` or `potential_fn` must be specified.")
        if step_size is not None and not step_size > 0:
            raise ValueError(f"step_size must be positive, got {step_size}")
        if num_steps is not None and num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.model = model
        self.potential_fn = potential_fn
        self.transforms = None if transforms is None else dict(transforms)
        self._max_plate_nesting = max_plate_nesting
        self._jit_compile = jit_compile
        self._jit_options = jit_options
        self._ignore_jit_warnings = ignore_jit_warnings
        self._init_strategy = init_strategy
        self._min_stepsize = min_stepsize
        self._max_stepsize = max_stepsize
        if num_steps is not None:
            self.trajectory_length = step_size * num_steps
        elif trajectory_length is None:
            self.trajectory_length = 2 * math.pi
        else:
            self.trajectory_length = trajectory_length
        self._fixed_num_steps = num_steps
        self._max_sliced_energy = 1000.0
        self._adapter = WarmupAdapter(
            step_size,
            adapt_step_size=adapt_step_size,
            adapt_mass_matrix=adapt_mass_matrix,
            target_accept_prob=target_accept_prob,
            dense_mass=full_mass,
        )
        self._initial_params: Params | None = None
        self._init_chain_state()

    @property
    def num_steps(self) -> int:
        """Leapfrog steps per trajectory at the current step size."""
        if self._fixed_num_steps is not None and not self._adapter.adapt_step_size:
            return self._fixed_num_steps
        return max(1, int(self.trajectory_length / self.step_size))

    def _steps_per_chain(self) -> list[int]:
        if self._fixed_num_steps is not None and not self._adapter.adapt_step_size:
            return [self._fixed_num_steps] * self._num_chains
        return [max(1, int(self.trajectory_length / float(s))) for s in self._adapter.step_sizes]

    def _transition(self) -> None:
        assert self._z is not None
        metric = self._adapter.mass_matrix_adapter
        r = metric.momentum(self._normal())
        h0 = self._pe + self._kinetic(r)
        step = self._adapter.step_sizes[:, None].to(self._pe.dtype)
        counts = self._steps_per_chain()
        z, grad, pe = self._z, self._grad, self._pe
        kinetic = h0 - pe
        for i in range(max(counts)):
            z1, r1, pe1, grad1, kinetic1 = self._leapfrog(z, r, grad, step)
            if i < min(counts):
                z, r, pe, grad, kinetic = z1, r1, pe1, grad1, kinetic1
            else:
                going = torch.tensor([i < n for n in counts])
                z, r, pe, grad = where(going, z1, z), where(going, r1, r), where(going, pe1, pe), where(going, grad1, grad)
                kinetic = where(going, kinetic1, kinetic)
        delta = pe + kinetic - h0
        delta = torch.where(torch.isnan(delta), math.inf, delta)
        accept_prob = (-delta).exp().clamp(max=1.0)
        accepted = self._uniform(1)[:, 0] < accept_prob
        self._z = where(accepted, z, self._z)
        self._pe = where(accepted, pe, self._pe)
        self._grad = where(accepted, grad, self._grad)
        stats = {
            "diverging": delta > self._max_sliced_energy,
            "energy": where(accepted, pe + kinetic, h0),
            "step_size": step[:, 0].clone(),
            "accept_prob": accept_prob,
            "num_steps": torch.tensor(counts),
        }
        self._after_transition(accept_prob, accepted, delta, stats)
