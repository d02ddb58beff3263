"""``ReentrantMessenger``: a messenger that stays installed once however often it is entered."""

from __future__ import annotations

from types import TracebackType

from typing_extensions import Self

from ember.poutine import _handler_state
from ember.poutine.messenger import Messenger

__all__ = ["ReentrantMessenger"]

# Bound by assignment (see ember.poutine.runtime): CPython 3.11 calls a method of an imported
# name through LOAD_ATTR, of an assigned one through the faster LOAD_METHOD.
_STACK = _handler_state._STACK


class ReentrantMessenger(Messenger):
    """A messenger that may be entered again while it is installed (e.g. by recursion).

    Only the outermost ``__enter__`` installs it and only the matching ``__exit__`` removes it.
    Whether it is installed is read from the handler stack, not from the count alone, so a
    count left behind by a run that died (an interrupt between the two) is reset by the next
    outermost entry. With ``_copy_per_call`` set (Ember's :class:`MarkovMessenger` does) a
    function it wraps runs a per-call copy, found again by that function's recursive calls.
    """

    def __init__(self) -> None:
        super().__init__()
        self._ref_count = 0
        self._call_origin: ReentrantMessenger | None = None

    def _copy_for_call(self) -> Self:
        # A recursive call finds what its outermost call installed: this instance or a copy.
        for frame in reversed(_STACK.get()):
            if frame is self:
                return self
            if isinstance(frame, ReentrantMessenger) and frame._call_origin is self:
                return frame  # type: ignore[return-value]  # a copy of self, so of type Self
        clone = super()._copy_for_call()
        clone._call_origin = self
        clone._ref_count = 0
        clone._fresh_run()
        return clone

    def _fresh_run(self) -> None:
        """Reset per-run state when this messenger is installed afresh (subclasses extend it)."""

    def __enter__(self) -> Self:
        if self._ref_count == 0 or not any(frame is self for frame in _STACK.get()):
            self._ref_count = 0
            self._fresh_run()
            super().__enter__()
        self._ref_count += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._ref_count -= 1
        if self._ref_count <= 0:
            self._ref_count = 0
            super().__exit__(exc_type, exc_value, traceback)
