"""``ReentrantMessenger``: a messenger that stays installed once however often it is entered."""

from __future__ import annotations

from types import TracebackType

from typing_extensions import Self

from ember.poutine.messenger import Messenger

__all__ = ["ReentrantMessenger"]


class ReentrantMessenger(Messenger):
    """A messenger that may be entered again while it is installed (e.g. by recursion).

    Only the outermost ``__enter__`` installs it and only the matching ``__exit__`` removes it.
    """

    def __init__(self) -> None:
        self._ref_count = 0

    def __enter__(self) -> Self:
        if self._ref_count == 0:
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
        if self._ref_count == 0:
            super().__exit__(exc_type, exc_value, traceback)
