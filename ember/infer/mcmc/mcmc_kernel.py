"""The interface every MCMC transition kernel implements for :class:`~ember.infer.mcmc.api.MCMC`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

__all__ = ["MCMCKernel"]


class MCMCKernel(ABC):
    """A Markov transition kernel: ``setup`` once, then ``sample`` repeatedly.

    Subclasses implement :meth:`sample`; the other hooks have do-nothing defaults.
    """

    def setup(self, warmup_steps: int, *args: Any, **kwargs: Any) -> None:
        """Prepare a run of ``warmup_steps`` warmup steps; ``args``/``kwargs`` go to the model."""

    def cleanup(self) -> None:
        """Release what :meth:`setup` built."""

    def end_warmup(self) -> None:
        """Called once when warmup ends."""

    def logging(self) -> dict[str, str]:
        """Short diagnostics shown in the progress bar's postfix."""
        return {}

    def diagnostics(self) -> dict[str, Any]:
        """Diagnostics of the run so far (e.g. divergences, acceptance rate)."""
        return {}

    def __call__(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Same as :meth:`sample`."""
        return self.sample(params)

    @abstractmethod
    def sample(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One transition from ``params`` (unconstrained values by site) to the next state."""
        raise NotImplementedError

    @property
    def initial_params(self) -> dict[str, torch.Tensor] | None:
        """Unconstrained starting values by site (``None`` until set up or given)."""
        return getattr(self, "_initial_params", None)

    @initial_params.setter
    def initial_params(self, params: dict[str, torch.Tensor] | None) -> None:
        self._initial_params = params
