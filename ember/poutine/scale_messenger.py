"""``scale``: multiply the log density of every site inside by a factor.

Changes step 1 of every message: ``msg["scale"] *= scale``.
"""

from __future__ import annotations

import torch

from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import is_validation_enabled

__all__ = ["ScaleMessenger"]


class ScaleMessenger(Messenger):
    """Scale log densities by a positive number or tensor.

    :param scale: a positive factor; use ``mask`` to drop terms instead of a zero scale.

    >>> ScaleMessenger(scale=0.0)
    Traceback (most recent call last):
    ...
    ValueError: Expected scale > 0 but got 0.0
    """

    def __init__(self, scale: float | torch.Tensor) -> None:
        if isinstance(scale, torch.Tensor):
            if is_validation_enabled() and not bool((scale > 0).all()):
                raise ValueError(
                    f"Expected scale > 0 but got {scale}. "
                    "Consider using poutine.mask() instead of poutine.scale()."
                )
        elif not scale > 0:
            raise ValueError(f"Expected scale > 0 but got {scale}")
        super().__init__()
        self.scale = scale

    def _process_message(self, msg: Message) -> None:
        msg["scale"] = self.scale * msg["scale"]
