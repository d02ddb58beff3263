"""``markov``: declare that sites depend only on a bounded window of recent contexts.

Changes step 1 of ``sample`` messages: each site is recorded in the current markov context
and gets ``msg["infer"]["_markov_scope"]``, a :class:`collections.Counter` of the sites in
the last ``history + 1`` contexts (the ones it may depend on), and
``msg["infer"]["_markov_depth"]``, the number of enclosing markov messengers. ``enum`` reads
both to reuse the dims of sites that have gone out of scope. Nothing else about the message
changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from types import TracebackType
from typing import Any, TypeVar

from typing_extensions import Self

from ember.poutine.message import Message
from ember.poutine.reentrant_messenger import ReentrantMessenger
from ember.poutine.util import site_is_subsample

__all__ = ["MarkovMessenger"]

_T = TypeVar("_T")


class MarkovMessenger(ReentrantMessenger):
    """A Markov chain of contexts: each sees its own sites and those of the ``history`` before it.

    Enter the same instance once per step (``for t in markov(range(T))`` does this), or wrap
    a recursive function with it. Contexts nest: entering it again while inside starts a
    deeper context, and exiting returns to the enclosing one.

    :param history: how many previous contexts a site may depend on; ``0`` makes the
        contexts independent, like a sequential plate.
    :param keep: keep a context's sites after it exits, so a sibling context entered later at
        the same depth may depend on them (branching). With ``False`` siblings are
        independent given their common ancestors.
    :param dim: reserved for vectorized markov; must be ``None``.
    :param name: reserved for vectorized markov; must be ``None``.

    >>> import ember
    >>> import ember.distributions as dist
    >>> from ember.poutine.trace_messenger import TraceMessenger
    >>> with TraceMessenger() as tracer:
    ...     for t in MarkovMessenger(history=1).iterate(range(3)):
    ...         x = ember.sample(f"x{t}", dist.Normal(0.0, 1.0))
    >>> dict(tracer.trace.nodes["x2"]["infer"]["_markov_scope"])
    {'x1': 1}
    """

    _copy_per_call = True

    def __init__(self, history: int = 1, keep: bool = False, dim: int | None = None, name: str | None = None) -> None:
        assert history >= 0, f"markov history must be >= 0, got {history}"
        if dim is not None:
            raise NotImplementedError("vectorized markov not yet implemented, try setting dim to None")
        if name is not None:
            raise NotImplementedError("vectorized markov not yet implemented, try setting name to None")
        super().__init__()
        self.history = history
        self.keep = keep
        self.dim = dim
        self.name = name
        # _stack[k] holds the names of the sites sampled in the context at nesting depth k.
        self._stack: list[set[str]] = []
        self._pos = -1
        self._iterable: Iterable[Any] = ()

    def generator(self, iterable: Iterable[Any]) -> Self:
        """Make iterating this messenger run :meth:`iterate` over ``iterable`` (Pyro's API)."""
        self._iterable = iterable
        return self

    def __iter__(self) -> Iterator[Any]:
        return self.iterate(self._iterable)

    def iterate(self, iterable: Iterable[_T]) -> Iterator[_T]:
        """Yield the items of ``iterable``, entering one more context before each.

        No context exits until the loop ends, so step ``t`` sits at depth ``t`` and sees the
        ``history`` steps before it.
        """
        with ExitStack() as contexts:
            for item in iterable:
                contexts.enter_context(self)
                yield item

    def _fresh_run(self) -> None:
        # A new list (not cleared in place): a per-call copy must not share the original's.
        self._stack = [set(sites) for sites in self._stack] if self.keep else []
        self._pos = -1

    def __enter__(self) -> Self:
        super().__enter__()
        self._pos += 1
        if len(self._stack) <= self._pos:
            self._stack.append(set())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if not self.keep and self._stack:
                self._stack.pop()
            self._pos -= 1
        finally:
            super().__exit__(exc_type, exc_value, traceback)

    def _pyro_sample(self, msg: Message) -> None:
        if msg["done"] or site_is_subsample(msg):
            return
        infer = msg["infer"]
        # A Counter, not a set: a site falls out of scope as soon as any one of the markov
        # contexts it was seen through exits, which enum detects by comparing depths.
        scope = infer.setdefault("_markov_scope", Counter())
        for position in range(max(0, self._pos - self.history), self._pos + 1):
            scope.update(self._stack[position])
        infer["_markov_depth"] = 1 + infer.get("_markov_depth", 0)
        self._stack[self._pos].add(msg["name"] or "")
