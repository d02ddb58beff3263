"""The ``.unconstrained`` link that the param store attaches to every value it hands out.

A weak reference from a constrained value back to its unconstrained leaf, so optimisers can
find what to step without the value keeping the leaf alive. Its own class so that values and
traces holding it still pickle and copy.
"""

from __future__ import annotations

import functools
import weakref

__all__: list[str] = []


class _LeafRef(weakref.ref):  # type: ignore[type-arg]  # weakref.ref[Tensor] cannot be subclassed at runtime
    """The ``.unconstrained`` link of a value read from the store: a weak reference to its leaf.

    Unlike a plain weak reference it pickles and copies, so values and traces holding them
    can be saved without stripping anything from live tensors. A pickled link does not keep
    its leaf: it loads as a callable returning ``None``, like a weak reference whose leaf is
    gone; read the param from the store again to get a live one.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[type[functools.partial[None]], tuple[type[None]]]:
        # Loads as ``partial(NoneType)``: called, it gives None, like a dead weak reference;
        # built from builtins only, so a saved store loads where Ember is not installed.
        return functools.partial, (type(None),)

    def __copy__(self) -> _LeafRef:
        return self

    def __deepcopy__(self, memo: object) -> _LeafRef:
        return self
