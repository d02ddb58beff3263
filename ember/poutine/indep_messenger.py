"""``IndepMessenger``: the root of the plate family (``IndepMessenger`` -> ``SubsampleMessenger`` -> ``PlateMessenger``).

It changes step 1 of every message: it prepends its
:class:`~ember.poutine.message.CondIndepStackFrame` to ``msg["cond_indep_stack"]``, so the
stack reads outermost first. Vectorized plates hold a dim while entered.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from typing_extensions import Self

from ember.poutine._handler_state import _DIM_ALLOCATOR
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import value_error_like

__all__ = ["CondIndepStackFrame", "IndepMessenger"]

_FULL_INDICES: dict[tuple[int, torch.device], torch.Tensor] = {}


def _full_indices(size: Any, device: str | torch.device | None) -> torch.Tensor:
    """``torch.arange(size)`` on ``device``, built once per size and device.

    A plate's full index tensor is the same on every run; rebuilding it per model run was a
    measurable share of a small model's SVI step. Under the JIT or ``torch.compile`` and for
    large sizes it is built afresh. The tensor is shared: code must not write into it.
    """
    if type(size) is not int or size > 1 << 16 or torch._C._get_tracing_state() or torch.compiler.is_compiling():
        return torch.arange(size, dtype=torch.long, device=device)
    key = (size, torch.device(device) if device is not None else torch.get_default_device())
    indices = _FULL_INDICES.get(key)
    if indices is None:
        if len(_FULL_INDICES) > 256:
            _FULL_INDICES.clear()
        # A normal tensor even when first asked for under inference mode, so training may
        # later save it for backward (``index_select``).
        with torch.inference_mode(False):
            indices = _FULL_INDICES[key] = torch.arange(size, dtype=torch.long, device=key[1])
    return indices


class IndepMessenger(Messenger):
    """Mark the sites inside as conditionally independent along ``dim``.

    Entered with ``with``, it is vectorized and allocates a dim (``dim=None`` takes the
    rightmost free one). Iterated (``for i in plate``), it is sequential: each iteration is
    its own context with a fresh ``counter``.

    :param name: a name unique among the enclosing plates.
    :param size: the number of independent elements.
    :param dim: a negative dim, or ``None`` to allocate one.
    :param device: where the index tensor lives.
    """

    def __init__(self, name: str, size: int, dim: int | None = None, device: str | torch.device | None = None) -> None:
        # Tracing state first: under the JIT ``size`` is a tensor, and its truth value warns.
        if not torch._C._get_tracing_state() and size == 0:
            raise value_error_like(ZeroDivisionError, f"size cannot be zero (plate {name!r})")
        super().__init__()
        self._vectorized: bool | None = True if dim is not None else None
        self._indices: torch.Tensor | None = None
        self.name = name
        self.dim = dim
        self.size = size
        self.device = device
        self.counter = 0

    def next_context(self) -> None:
        """Start the next sequential context (a new ``counter``)."""
        self.counter += 1

    def __enter__(self) -> Self:
        if self._vectorized is not False:
            self._vectorized = True
            self.dim = _DIM_ALLOCATOR.allocate(self.name, self.dim, self)
        try:
            return super().__enter__()
        except BaseException:
            self._free_dim()
            raise

    def __exit__(self, *args: Any) -> None:
        # Leave the stack first: a dim whose plate is off the stack counts as free, so an
        # interrupt between the two steps leaves nothing allocated.
        try:
            super().__exit__(*args)
        finally:
            self._free_dim()

    def _free_dim(self) -> None:
        if self._vectorized is True and self.dim is not None:
            _DIM_ALLOCATOR.free(self.name, self.dim, self)

    def __iter__(self) -> Iterator[Any]:
        if self._vectorized is True or self.dim is not None:
            raise ValueError(
                f"cannot use plate {self.name} as both vectorized and non-vectorized"
                "independence context"
            )
        self._vectorized = False
        self.dim = None
        for index in self.indices:
            self.next_context()
            with self:
                yield index.item() if isinstance(index, torch.Tensor) else index

    def _reset(self) -> None:
        if self._vectorized:
            self._free_dim()
        self._vectorized = None
        self.counter = 0

    @property
    def indices(self) -> torch.Tensor:
        if self._indices is None:
            self._indices = _full_indices(self.size, self.device)
        return self._indices

    def _frame(self) -> CondIndepStackFrame:
        return CondIndepStackFrame(self.name, self.dim, self.size, self.counter)

    def _process_message(self, msg: Message) -> None:
        msg["cond_indep_stack"] = (self._frame(), *msg["cond_indep_stack"])
