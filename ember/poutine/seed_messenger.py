"""``seed``: run code under fixed RNG seeds, then restore the previous RNG state.

It changes no message and is never put on the handler stack.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ember.poutine.messenger import Messenger
from ember._util import get_rng_state, set_rng_seed, set_rng_state

__all__ = ["SeedMessenger"]


class SeedMessenger(Messenger):
    """Seed torch, :mod:`random` and numpy on entry; restore their states on exit.

    :param rng_seed: the seed.

    >>> import torch
    >>> with SeedMessenger(rng_seed=0):
    ...     a = torch.rand(())
    >>> with SeedMessenger(rng_seed=0):
    ...     b = torch.rand(())
    >>> bool(a == b)
    True
    """

    def __init__(self, rng_seed: int) -> None:
        assert isinstance(rng_seed, int), f"rng_seed must be an int, got {rng_seed!r}"
        super().__init__()
        self.rng_seed = rng_seed
        self.old_state: dict[str, Any] = {}

    def __enter__(self) -> None:  # type: ignore[override]  # Pyro's seed binds nothing under ``with``
        self.old_state = get_rng_state()
        set_rng_seed(self.rng_seed)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        set_rng_state(self.old_state)
