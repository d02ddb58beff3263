"""Warmup adaptation for HMC/NUTS: step size by dual averaging, mass matrix by windowed Welford.

Everything here works on flat unconstrained vectors with one row per chain (shape ``(C, D)``),
so vectorized chains adapt independently in one batch. The schedule is Stan's: a fast initial
buffer (step size only), doubling slow windows that estimate the mass matrix (the step size is
searched again after each), and a fast terminal buffer.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch

from ember.infer.mcmc.mass_matrix import ArrowheadMassMatrix, BlockMassMatrix
from ember.ops.dual_averaging import DualAveraging

__all__ = ["ArrowheadMassMatrix", "BlockMassMatrix", "WarmupAdapter", "adapt_window"]


class adapt_window(NamedTuple):  # noqa: N801 - Pyro's name
    """One adaptation window: warmup steps ``start`` to ``end``, both included."""

    start: int
    end: int


StepSizeSearch = Callable[[torch.Tensor], torch.Tensor]
MassMatrixAdapter = BlockMassMatrix | ArrowheadMassMatrix


class WarmupAdapter:
    """Adapts the step size and the mass matrix during warmup.

    :param step_size: the initial step size.
    :param adapt_step_size: tune the step size by dual averaging towards ``target_accept_prob``.
    :param target_accept_prob: the acceptance probability the step size aims at.
    :param adapt_mass_matrix: estimate the (inverse) mass matrix in the slow windows.
    :param dense_mass: ``False`` (diagonal), ``True`` (dense) or a list of tuples of site names
        (dense blocks, the other sites diagonal).

    >>> adapter = WarmupAdapter(adapt_step_size=True, adapt_mass_matrix=True)
    >>> adapter._warmup_steps = 1000
    >>> adapter._build_adaptation_schedule()[:3]
    [adapt_window(start=0, end=74), adapt_window(start=75, end=99), adapt_window(start=100, end=149)]
    """

    def __init__(
        self,
        step_size: float = 1,
        adapt_step_size: bool = False,
        target_accept_prob: float = 0.8,
        adapt_mass_matrix: bool = False,
        dense_mass: bool | list[tuple[str, ...]] = False,
    ) -> None:
        self.adapt_step_size = adapt_step_size
        self.adapt_mass_matrix = adapt_mass_matrix
        self.target_accept_prob = target_accept_prob
        self.dense_mass = dense_mass
        self._init_step_size = 1.0 if step_size is None else float(step_size)
        self._step_sizes = torch.tensor([self._init_step_size])
        self._adaptation_disabled = not (adapt_step_size or adapt_mass_matrix)
        self._step_size_adapt_scheme = DualAveraging()
        self._mass_matrix_adapter: MassMatrixAdapter = BlockMassMatrix()
        self._adapt_start_buffer = 75
        self._adapt_end_buffer = 50
        self._adapt_initial_window = 25
        self._warmup_steps = 0
        self._adaptation_schedule: list[adapt_window] = []
        self._current_window = 0
        self._find_reasonable_step_size: StepSizeSearch | None = None

    @property
    def step_size(self) -> float:
        """The current step size (of the first chain when chains run vectorized)."""
        return float(self._step_sizes[0])

    @step_size.setter
    def step_size(self, value: float) -> None:
        self._step_sizes = torch.full_like(self._step_sizes, float(value))

    @property
    def step_sizes(self) -> torch.Tensor:
        """The current step size of each chain, shape ``(C,)``."""
        return self._step_sizes

    def _build_adaptation_schedule(self) -> list[adapt_window]:
        warmup = self._warmup_steps
        if warmup < 20:
            return [adapt_window(0, warmup - 1)]
        start, end, initial = self._adapt_start_buffer, self._adapt_end_buffer, self._adapt_initial_window
        if start + end + initial > warmup:
            start, end = int(0.15 * warmup), int(0.1 * warmup)
            initial = warmup - start - end
        schedule = [adapt_window(0, start - 1)]
        end_start = warmup - end
        size, begin = initial, start
        while begin < end_start:
            if 3 * size <= end_start - begin:
                next_size = 2 * size
            else:
                size = end_start - begin
                next_size = size
            schedule.append(adapt_window(begin, begin + size - 1))
            begin, size = begin + size, next_size
        schedule.append(adapt_window(end_start, warmup - 1))
        return schedule

    def configure(
        self,
        warmup_steps: int,
        initial_step_size: float | torch.Tensor | None = None,
        mass_matrix_shape: dict[tuple[str, ...], tuple[int, ...]] | None = None,
        find_reasonable_step_size_fn: StepSizeSearch | None = None,
        options: dict[str, Any] | None = None,
        num_chains: int = 1,
    ) -> None:
        """Set up the schedule and the mass matrix for a run.

        :param warmup_steps: the number of warmup steps.
        :param initial_step_size: the step size to start from (default: the constructor's).
        :param mass_matrix_shape: per block of site names, ``(n,)`` (diagonal) or ``(n, n)``.
        :param find_reasonable_step_size_fn: searches a step size from the current point.
        :param options: ``dtype`` and ``device`` of the mass matrix.
        :param num_chains: how many chains adapt at once (rows of every tensor).
        :raises ValueError: without ``mass_matrix_shape``.
        """
        options = {} if options is None else options
        self._warmup_steps = warmup_steps
        initial = self._init_step_size if initial_step_size is None else initial_step_size
        self._step_sizes = torch.as_tensor(initial, dtype=options.get("dtype")).expand(num_chains).clone()
        if find_reasonable_step_size_fn is not None:
            self._find_reasonable_step_size = find_reasonable_step_size_fn
        if mass_matrix_shape is None:
            raise ValueError("Incomplete configuration - step size and inverse mass matrix need to be initialized.")
        self._mass_matrix_adapter.configure(mass_matrix_shape, self.adapt_mass_matrix, options=options, num_chains=num_chains)
        if not self._adaptation_disabled:
            self._adaptation_schedule = self._build_adaptation_schedule()
        self._current_window = 0
        self._step_size_adapt_scheme.reset()

    def reset_step_size_adaptation(self, z: torch.Tensor) -> None:
        """Search a reasonable step size at ``z`` and restart dual averaging around it."""
        if self._find_reasonable_step_size is not None:
            self._step_sizes = self._find_reasonable_step_size(z)
        self._step_size_adapt_scheme.prox_center = torch.log(10 * self._step_sizes)
        self._step_size_adapt_scheme.reset()

    def _update_step_size(self, accept_prob: torch.Tensor) -> None:
        self._step_size_adapt_scheme.step(self.target_accept_prob - accept_prob)
        log_step_size, _ = self._step_size_adapt_scheme.get_state()
        self._step_sizes = torch.as_tensor(log_step_size).exp()

    def _end_adaptation(self) -> None:
        if self.adapt_step_size:
            _, log_step_size_avg = self._step_size_adapt_scheme.get_state()
            self._step_sizes = torch.as_tensor(log_step_size_avg).exp()

    def step(self, t: int, z: torch.Tensor, accept_prob: torch.Tensor, z_grad: torch.Tensor | None = None) -> None:
        """Learn from warmup step ``t`` (counting from 0): the state ``z`` (``(C, D)``) and
        the acceptance probability of its proposal (``(C,)``)."""
        if t >= self._warmup_steps or self._adaptation_disabled:
            return
        window = self._adaptation_schedule[self._current_window]
        num_windows = len(self._adaptation_schedule)
        slow = self.adapt_mass_matrix and 0 < self._current_window < num_windows - 1
        if self.adapt_step_size:
            self._update_step_size(accept_prob)
        if slow:
            self._mass_matrix_adapter.update(z, z_grad)
        if t == window.end:
            if self._current_window == num_windows - 1:
                self._current_window += 1
                self._end_adaptation()
                return
            if slow:
                self._mass_matrix_adapter.end_adaptation()
                if self.adapt_step_size:
                    self.reset_step_size_adaptation(z)
            self._current_window += 1

    @property
    def adaptation_schedule(self) -> list[adapt_window]:
        """The windows of the current run."""
        return self._adaptation_schedule

    @property
    def mass_matrix_adapter(self) -> MassMatrixAdapter:
        """The mass matrix adapter (a :class:`BlockMassMatrix` unless replaced)."""
        return self._mass_matrix_adapter

    @mass_matrix_adapter.setter
    def mass_matrix_adapter(self, value: MassMatrixAdapter) -> None:
        self._mass_matrix_adapter = value


