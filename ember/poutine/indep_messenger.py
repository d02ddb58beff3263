"""``IndepMessenger``: the root of the plate family (``IndepMessenger`` -> ``SubsampleMessenger`` -> ``PlateMessenger``).

It changes step 1 of every message: it prepends its
:class:`~ember.poutine.message.CondIndepStackFrame` to ``msg["cond_indep_stack"]``, so the
stack reads outermost first. Vectorized plates hold a dim while entered.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from typing_extensions import Self

from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import _DIM_ALLOCATOR, value_error_like

__all__ = ["CondIndepStackFrame", "IndepMessenger"]


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
            self._indices = torch.arange(self.size, dtype=torch.long, device=self.device)
        return self._indices

    def _frame(self) -> CondIndepStackFrame:
        return CondIndepStackFrame(self.name, self.dim, self.size, self.counter)

    def _process_message(self, msg: Message) -> None:
        msg["cond_indep_stack"] = (self._frame(), *msg["cond_indep_stack"])
