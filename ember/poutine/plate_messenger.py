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
from ember.poutine.subsample_messenger import SubsampleMessenger

__all__ = ["PlateMessenger", "block_plate"]


class PlateMessenger(SubsampleMessenger):
    """A :class:`SubsampleMessenger` that also broadcasts sample sites to the plate shape.

    Entering it returns the subsample indices (``None`` for a plate of unknown size).
    """

    def _process_message(self, msg: Message) -> None:
        super()._process_message(msg)
        BroadcastMessenger._pyro_sample(msg)

    def __enter__(self) -> torch.Tensor:  # type: ignore[override]  # Pyro binds the indices, not the messenger, in `with plate(...) as idx`
        """Install the plate; a vectorized plate returns its (subsample) indices.

        Typed as the indices tensor that ``with plate(...) as idx`` binds; a plate entered
        as a sequential ``irange``-style context returns ``None`` as in Pyro.
        """
        super().__enter__()
        if self._vectorized and self._indices is not None:
            return self.indices
        return None  # type: ignore[return-value]  # Pyro's sequential-plate case; users bind idx only on vectorized plates


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
