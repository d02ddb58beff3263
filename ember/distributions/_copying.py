"""Object helpers of :mod:`ember.distributions.util`: docs copying, deep copies, weak methods.

:func:`detach` and :func:`deep_to` deep-copy arbitrary objects while mapping every tensor;
:func:`weakmethod` binds a method without a reference cycle; :func:`copy_docs_from` fills
missing method docstrings from another class.
"""

from __future__ import annotations

import copy
import functools
import weakref
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import torch

__all__ = ["copy_docs_from", "deep_to", "detach", "weakmethod"]

_T = TypeVar("_T")
_C = TypeVar("_C", bound=type)
_S = TypeVar("_S")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def copy_docs_from(source_class: type, full_text: bool = False) -> Callable[[_C], _C]:
    """Class decorator giving undocumented public attributes a docstring from ``source_class``.

    By default the copied docstring is a reference ``See :meth:`module.Class.name```; with
    ``full_text`` (or when the source text already starts with ``"See "``) it is the text.

    :param source_class: where to take docstrings from.
    :param full_text: copy the whole text rather than a reference.

    >>> class A:
    ...     def f(self) -> None:
    ...         "Does f."
    >>> @copy_docs_from(A, full_text=True)
    ... class B(A):
    ...     def f(self) -> None:
    ...         pass
    >>> B.f.__doc__
    'Does f.'
    """

    def decorate(target: _C) -> _C:
        for name in dir(target):
            if name.startswith("_"):
                continue
            attr = getattr(target, name)
            attr = getattr(attr, "__func__", attr)
            doc = getattr(getattr(source_class, name, None), "__doc__", None)
            if not doc or getattr(attr, "__doc__", None):
                continue
            if not (full_text or doc.startswith("See ")):
                doc = f"See :meth:`{source_class.__module__}.{source_class.__name__}.{name}`"
            if isinstance(attr, property):
                setattr(target, name, property(attr.fget, attr.fset, attr.fdel, doc))
            else:
                try:
                    attr.__doc__ = doc
                except (AttributeError, TypeError):  # builtins and slots keep their docs
                    pass
        return target

    return decorate


class _TensorMappingMemo(dict[int, Any]):
    """A ``deepcopy`` memo that maps each tensor met during the copy instead of copying it."""

    def __init__(self, objects: dict[int, Any], fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self._fn = fn
        self._objects = objects

    def get(self, key: int, default: Any = None) -> Any:
        result = super().get(key, default)
        if result is default:
            original = self._objects.get(key)
            if isinstance(original, torch.Tensor):
                self[key] = result = self._fn(original)
        return result


def _collect(obj: object, found: dict[int, Any]) -> None:
    # deepcopy's memo is keyed by id(); remember which ids are tensors (or modules) and keep
    # them alive until the copy is done.
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in found:
            continue
        found[id(item)] = item
        if isinstance(item, torch.Tensor):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend(vars(item).values())


def _map_tensors(obj: _T, fn: Callable[[torch.Tensor], torch.Tensor]) -> _T:
    objects: dict[int, Any] = {}
    _collect(obj, objects)
    return copy.deepcopy(obj, _TensorMappingMemo(objects, fn))


def detach(obj: _T) -> _T:
    """A deep copy of ``obj`` with every tensor detached (tensor data is shared, not copied).

    :param obj: any Python object.

    >>> x = torch.ones(2, requires_grad=True)
    >>> copied = detach({"x": x, "n": [x]})
    >>> copied["x"].requires_grad, copied["x"] is copied["n"][0]
    (False, True)
    """
    return _map_tensors(obj, torch.Tensor.detach)


def deep_to(obj: _T, *args: Any, **kwargs: Any) -> _T:
    """A deep copy of ``obj`` with ``.to(*args, **kwargs)`` applied to every tensor and module.

    Modules are moved in place first (as :meth:`torch.nn.Module.to` does), then copied.

    :param obj: any Python object.
    :param args: positional arguments of :meth:`torch.Tensor.to`.
    :param kwargs: keyword arguments of :meth:`torch.Tensor.to`.

    >>> deep_to({"a": torch.ones(1)}, torch.float64)["a"].dtype
    torch.float64
    """
    objects: dict[int, Any] = {}
    _collect(obj, objects)
    for item in objects.values():
        if isinstance(item, torch.nn.Module):
            item.to(*args, **kwargs)
    return copy.deepcopy(obj, _TensorMappingMemo(objects, lambda t: t.to(*args, **kwargs)))


class _WeakMethod(Generic[_S, _P, _R]):
    """The descriptor :func:`weakmethod` returns."""

    def __init__(self, fn: Callable[Concatenate[_S, _P], _R]) -> None:
        self._fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "weakmethod")

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _WeakMethod[_S, _P, _R]: ...
    @overload
    def __get__(self, obj: _S, owner: type | None = None) -> Callable[_P, _R]: ...
    def __get__(
        self, obj: _S | None, owner: type | None = None
    ) -> _WeakMethod[_S, _P, _R] | Callable[_P, _R]:
        if obj is None:
            return self
        return functools.partial(_call_weakly, weakref.ref(obj), self._fn)

    def __set__(self, obj: _S, value: object) -> None:
        if not (
            isinstance(value, functools.partial)
            and value.func is _call_weakly
            and value.args[0] == weakref.ref(obj)
            and value.args[1] is self._fn
        ):
            raise AttributeError(f"cannot overwrite weakmethod {self._fn.__name__}")


def _call_weakly(ref: weakref.ref[Any], fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    self = ref()
    if self is None:
        raise AttributeError(f"self was garbage collected when calling self.{fn.__name__}")
    return fn(self, *args, **kwargs)


def weakmethod(fn: Callable[Concatenate[_S, _P], _R]) -> _WeakMethod[_S, _P, _R]:
    """Decorate a method so that bound instances hold their ``self`` weakly.

    Storing ``self.callback = self._callback`` then creates no reference cycle; calling it
    after ``self`` is collected raises :class:`AttributeError`.

    :param fn: the method.

    >>> class Foo:
    ...     def __init__(self) -> None:
    ...         self.callback = self._callback
    ...     @weakmethod
    ...     def _callback(self, x: int) -> int:
    ...         return x + 1
    >>> foo = Foo()
    >>> foo.callback(1)
    2
    """
    return _WeakMethod(fn)
