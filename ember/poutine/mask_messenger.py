"""``mask``: drop log density terms where a boolean mask is false.

Changes step 1 of every message: ``msg["mask"]`` becomes ``mask`` (or its ``&`` with an
inner mask). Beyond Pyro, with validation on, a tensor mask is checked in step 3 of each
sample site against the site's final batch shape: one that does not broadcast raises at
the site, naming it, its plates and both shapes (Pyro fails later, in ``log_prob_sum``,
with a bare torch error).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from typing_extensions import Self

from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import is_validation_enabled, value_error_like

__all__ = ["MaskMessenger"]


class MaskMessenger(Messenger):
    """Mask log densities with a Python bool or a bool tensor.

    :param mask: ``True`` keeps, ``False`` drops; a tensor broadcasts against batch shapes.

    >>> MaskMessenger(mask=torch.tensor([1.0, 0.0]))
    Traceback (most recent call last):
    ...
    ValueError: Expected mask to be a BoolTensor but got <class 'torch.Tensor'> (dtype torch.float32, shape (2,))
    """

    # Whether a tensor mask is checked against each site's batch shape; ``obs_mask`` sites
    # turn it off and check their mask themselves, with Pyro's message.
    _check_shape = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Only a tensor mask needs the shape check, so only it pays for a postprocess hook:
        # a Python bool mask keeps the hook-free class on the hot path.
        mask = args[0] if args else kwargs.get("mask")
        target: type[MaskMessenger] = cls
        if cls is MaskMessenger and isinstance(mask, torch.Tensor):
            target = _TensorMaskMessenger
        return cast(Self, super().__new__(target))

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


class _TensorMaskMessenger(MaskMessenger):
    """A :class:`MaskMessenger` with a tensor mask, checked against each site's batch shape."""

    def _pyro_post_sample(self, msg: Message) -> None:
        mask = self.mask
        batch_shape = getattr(msg["fn"], "batch_shape", None)
        if not self._check_shape or not isinstance(mask, torch.Tensor) or batch_shape is None or not is_validation_enabled():
            return
        try:
            torch.broadcast_shapes(mask.shape, batch_shape)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        except RuntimeError:
            plates = ", ".join(f"{f.name!r} (dim {f.dim}, size {f.size})" for f in msg["cond_indep_stack"]) or "none"
            raise value_error_like(
                RuntimeError,
                f"sample site {msg['name']!r}: mask of shape {tuple(mask.shape)} does not broadcast with the "
                f"site's batch shape {tuple(batch_shape)} (plates: {plates})",
            ) from None
