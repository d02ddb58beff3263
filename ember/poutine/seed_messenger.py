"""``seed``: run code under fixed RNG seeds, then restore the previous RNG state.

It changes no message and is never put on the handler stack.

Threads and tasks
=================
``seed`` makes a run reproducible only when nothing else draws random numbers while it
runs. torch keeps one default generator per device for the whole process, shared by all
threads, and ``seed`` reseeds that generator (as Pyro's does), so a draw in another thread
or asyncio task in the middle of a seeded run changes the run's numbers.

A per-thread or per-task ``torch.Generator`` used by "Ember's own sampling paths" cannot fix
this soundly: ``torch.distributions`` samplers (``rsample``/``sample`` of ``Normal``,
``Gamma``, ``Categorical``, ...) call ``torch.normal``, ``torch.rand``, ``torch._standard_gamma``,
``torch.multinomial`` and friends without a ``generator`` argument and offer no way to pass
one, and Ember's distributions are torch's. Such a generator would reach only the few draws
Ember makes itself (a plate's subsample ``randperm``, TMC ancestor choices), not the
distributions' draws, nor ``torch.randn`` in user code, dropout or module initialisation;
seeded runs would still differ, while looking per-thread.

What to do instead:

* run seeded work in separate **processes** (``multiprocessing`` or
  ``torch.multiprocessing``): each has its own generators, so ``seed`` is exact there;
* in one process, **serialise** seeded runs with one lock held around each ``seed`` block,
  and make sure no other thread draws random numbers while it is held;
* in asyncio code, do not ``await`` inside a ``seed`` block (another task would draw from
  the reseeded generator).
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

    _copy_per_call = True  # a wrapped call saves the RNG state it restores on its own copy

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
