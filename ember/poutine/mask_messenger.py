"""``mask``: drop log density terms where a boolean mask is false.

Changes step 1 of every message: ``msg["mask"]`` becomes ``mask`` (or its ``&`` with an
inner mask).
"""

from __future__ import annotations

import torch

from ember.poutine.message import Message
from ember.poutine.messenger import Messenger

__all__ = ["MaskMessenger"]


class MaskMessenger(Messenger):
    """Mask log densities with a Python bool or a bool tensor.

    :param mask: ``True`` keeps, ``False`` drops; a tensor broadcasts against batch shapes.

    >>> MaskMessenger(mask=torch.tensor([1.0, 0.0]))
    Traceback (most recent call last):
    ...
    ValueError: Expected mask to be a BoolTensor but got <class 'torch.Tensor'> (dtype torch.float32, shape (2,))
    """

    def __init__(self, mask: bool | torch.Tensor) -> None:
        if isinstance(mask, torch.Tensor):
            if mask.dtype != torch.bool:
                raise ValueError(
                    f"Expected mask to be a BoolTensor but got {type(mask)} "
                    f"(dtype {mask.dtype}, shape {tuple(mask.shape)})"
                )
        elif mask not in (True, False):
            raise ValueError(f"Expected mask to be a boolean but got {type(mask)}")
        super().__init__()
        self.mask = mask

    def _process_message(self, msg: Message) -> None:
        inner = msg["mask"]
        msg["mask"] = self.mask if inner is None else inner & self.mask
