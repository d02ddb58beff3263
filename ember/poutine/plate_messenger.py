"""``PlateMessenger`` (the ``plate`` primitive's messenger) and ``block_plate``.

``PlateMessenger`` is a :class:`~ember.poutine.subsample_messenger.SubsampleMessenger` that
also broadcasts sample distributions to the plate shape (see
:class:`~ember.poutine.broadcast_messenger.BroadcastMessenger`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from ember.poutine.broadcast_messenger import BroadcastMessenger
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger, block_messengers
from ember.poutine.runtime import get_stack
from ember.poutine.subsample_messenger import SubsampleMessenger

__all__ = ["PlateMessenger", "block_plate"]


class PlateMessenger(SubsampleMessenger):
    """A :class:`SubsampleMessenger` that also broadcasts sample sites to the plate shape.

    Entering it returns the subsample indices (``None`` for a plate of unknown size).
    """

    _seen_stack: tuple[object, ...] | None = None
    _outer_broadcasts = False

    def _process_message(self, msg: Message) -> None:
        super()._process_message(msg)
        stack = get_stack()
        if stack is not self._seen_stack:
            self._seen_stack = stack
            self._outer_broadcasts = _next_outer_is_plate(stack, self)
        # The next messenger out is a plate that broadcasts over all frames, this one's
        # included, with nothing in between to look at ``fn``: one expand does for both.
        if not self._outer_broadcasts:
            BroadcastMessenger._pyro_sample(msg, innermost_first=True)

    def __exit__(self, *args: Any) -> None:
        # The cached stack holds this plate: dropping it on the way out leaves no reference
        # cycle, so a finished plate (and what its sites hold) is freed without the GC.
        self._seen_stack = None
        super().__exit__(*args)

    def __enter__(self) -> torch.Tensor:  # type: ignore[override]  # Pyro binds the indices, not the messenger, in `with plate(...) as idx`
        """Install the plate; a vectorized plate returns its (subsample) indices.

        Typed as the indices tensor that ``with plate(...) as idx`` binds; a plate entered
        as a sequential ``irange``-style context returns ``None`` as in Pyro.
        """
        super().__enter__()
        if self._vectorized and self._indices is not None:
            return self.indices
        return None  # type: ignore[return-value]  # Pyro's sequential-plate case; users bind idx only on vectorized plates


def _next_outer_is_plate(stack: tuple[object, ...], plate: PlateMessenger) -> bool:
    for i in range(len(stack) - 1, 0, -1):
        if stack[i] is plate:
            outer = stack[i - 1]
            return isinstance(outer, PlateMessenger) and type(outer)._process_message is PlateMessenger._process_message
    return False


@contextmanager
def block_plate(name: str | None = None, dim: int | None = None, *, strict: bool = True) -> Iterator[None]:
    """Temporarily remove one enclosing plate, chosen by ``name`` or by ``dim``.

    :param strict: require exactly one match.
    """
    if (name is None) == (dim is None):
        raise ValueError("Exactly one of name,dim must be specified")
    assert name is None or isinstance(name, str)
    assert dim is None or (isinstance(dim, int) and dim < 0)

    def matches(messenger: Messenger) -> bool:
        if not isinstance(messenger, PlateMessenger):
            return False
        return messenger.name == name if name is not None else messenger.dim == dim

    with block_messengers(matches) as blocked:
        if strict and len(blocked) != 1:
            raise ValueError(
                f"block_plate matched {len(blocked)} messengers. "
                "Try either removing the block_plate or setting strict=False."
            )
        yield
