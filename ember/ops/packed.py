"""Packed tensors: size-1 dims squeezed out and the remaining dims named by one character each.

A trace packs each site's log density (:meth:`~ember.poutine.Trace.pack_tensors`) so that
enumeration and plate dims become named symbols in ``tensor._pyro_dims``; contraction then
works on names instead of positions. ``pack`` and ``unpack`` convert between the two forms;
the other functions are the pointwise operations of packed tensors (they broadcast by name).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, overload

import opt_einsum
import torch

from ember.ops._dims import dims_of, named

__all__ = [
    "broadcast_all",
    "exp",
    "gather",
    "logsumproductexp",
    "mul",
    "neg",
    "pack",
    "rename_equation",
    "scale_and_mask",
    "sumproduct",
    "unpack",
]


def pack(value: Any, dim_to_symbol: Mapping[int, str]) -> Any:
    """Squeeze ``value`` and record its remaining dims as symbols in ``value._pyro_dims``.

    Numbers, booleans and ``None`` pass through unchanged.

    :param value: a tensor or a number.
    :param dim_to_symbol: the symbol of each allowed (negative) dim.
    :raises ValueError: if a dim of size > 1 has no symbol.

    >>> pack(torch.zeros(3, 1, 2), {-3: "a", -1: "b"})._pyro_dims
    'ab'
    """
    if not isinstance(value, torch.Tensor):
        return value
    assert not hasattr(value, "_pyro_dims"), "tried to pack an already-packed tensor"
    offset = value.dim()
    symbols = []
    for position, size in enumerate(value.shape):
        if size > 1:
            symbol = dim_to_symbol.get(position - offset)
            if symbol is None:
                raise ValueError(
                    "Invalid tensor shape.\n"
                    f"  Allowed dims: {', '.join(map(str, sorted(dim_to_symbol)))}\n"
                    f"  Actual shape: {tuple(value.shape)}\n"
                    "  Try adding shape assertions for your model's sample values and "
                    "distribution parameters."
                )
            symbols.append(symbol)
    return named(value.squeeze(), "".join(symbols))


def unpack(value: Any, symbol_to_dim: Mapping[str, int]) -> Any:
    """Undo :func:`pack`: put each named dim back at its (negative) position, size 1 elsewhere.

    The result carries no ``_pyro_dims``. Numbers pass through unchanged.

    :param value: a packed tensor or a number.
    :param symbol_to_dim: the (negative) dim of each symbol.

    >>> x = pack(torch.zeros(3, 1, 2), {-3: "a", -1: "b"})
    >>> unpack(x, {"a": -3, "b": -1}).shape
    torch.Size([3, 1, 2])
    """
    if not isinstance(value, torch.Tensor):
        return value
    names = dims_of(value)
    if not names:
        return value[...]  # a new object, without the ``_pyro_dims`` attribute
    positions = [symbol_to_dim[name] for name in names]
    order = sorted(range(len(positions)), key=positions.__getitem__)
    if order != list(range(len(order))):
        value = value.permute(order)
    shape = [1] * -min(positions)
    for k, i in enumerate(order):
        shape[positions[i]] = value.shape[k]
    return value.reshape(shape)


def broadcast_all(*values: torch.Tensor, dims: str | None = None) -> tuple[torch.Tensor, ...]:
    """Expand packed tensors to a common set of named dims (sorted, or in the order ``dims``).

    :param values: packed tensors.
    :param dims: the order of the result's dims; it must name exactly the dims present.

    >>> x, y = named(torch.zeros(2), "a"), named(torch.zeros(3), "b")
    >>> [(t.shape, t._pyro_dims) for t in broadcast_all(x, y)]
    [(torch.Size([2, 3]), 'ab'), (torch.Size([2, 3]), 'ab')]
    """
    sizes: dict[str, int] = {}
    for value in values:
        sizes.update(zip(dims_of(value), value.shape))
    if dims is None:
        dims = "".join(sorted(sizes))
    elif set(dims) != set(sizes):
        raise ValueError(f"broadcast_all: dims {dims!r} do not match the operands' dims {''.join(sorted(sizes))!r}")
    shape = torch.Size(sizes[d] for d in dims)
    result = []
    for value in values:
        old = dims_of(value)
        if old != dims:
            value = value.permute(tuple(old.index(d) for d in dims if d in old))
            value = value.reshape(tuple(sizes[d] if d in old else 1 for d in dims)).expand(shape)
            named(value, dims)
        result.append(value)
    return tuple(result)


def gather(value: torch.Tensor, index: torch.Tensor, dim: str) -> torch.Tensor:
    """Select along the named dim ``dim`` of ``value`` at ``index``, broadcasting by name.

    :param value: a packed tensor with dim ``dim``.
    :param index: a packed integer tensor without dim ``dim``.
    :param dim: the name of the dim to select along; the result lacks it.

    >>> v = named(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "ab")
    >>> gather(v, named(torch.tensor([1, 0]), "b"), "a")
    tensor([3., 2.])
    """
    if dim not in dims_of(value) or dim in dims_of(index):
        raise ValueError(
            f"gather: expected dim {dim!r} in the value's dims {dims_of(value)!r} "
            f"and not in the index's dims {dims_of(index)!r}"
        )
    value, index = broadcast_all(value, index)
    names = dims_of(value)
    pos = names.index(dim)
    result = value.gather(pos, index.narrow(pos, 0, 1)).squeeze(pos)
    return named(result, names.replace(dim, ""))


@overload
def mul(lhs: torch.Tensor, rhs: torch.Tensor | float) -> torch.Tensor: ...
@overload
def mul(lhs: float, rhs: torch.Tensor) -> torch.Tensor: ...
@overload
def mul(lhs: float, rhs: float) -> float: ...
def mul(lhs: torch.Tensor | float, rhs: torch.Tensor | float) -> torch.Tensor | float:
    """Multiply packed tensors (or numbers), broadcasting by name.

    >>> mul(named(torch.ones(2), "a"), named(torch.ones(3), "b"))._pyro_dims
    'ab'
    """
    if isinstance(lhs, torch.Tensor) and isinstance(rhs, torch.Tensor):
        left, right = broadcast_all(lhs, rhs)
        return named(left * right, dims_of(left))
    if isinstance(lhs, torch.Tensor):
        return named(lhs * rhs, dims_of(lhs))
    if isinstance(rhs, torch.Tensor):
        return named(rhs * lhs, dims_of(rhs))
    return lhs * rhs


def _is_identically_one(value: object) -> bool:
    if isinstance(value, (int, float)):
        return value == 1
    return (
        isinstance(value, torch.Tensor)
        and value.dtype == torch.int64
        and value.dim() == 0
        and not torch._C._get_tracing_state()
        and bool(value.item() == 1)
    )


def scale_and_mask(
    tensor: torch.Tensor, scale: torch.Tensor | float = 1.0, mask: torch.Tensor | bool | None = None
) -> torch.Tensor:
    """Scale a packed tensor and zero it where the packed ``mask`` is false, skipping no-ops.

    Masking uses :func:`torch.where`, so NaNs under a false mask stay out of sums and gradients.

    :param tensor: a packed tensor.
    :param scale: a positive number or scalar tensor.
    :param mask: ``None``, a bool, or a packed bool tensor.
    :raises NotImplementedError: for a non-scalar ``scale``.

    >>> t = named(torch.tensor([1.0, float("nan")]), "a")
    >>> scale_and_mask(t, 2.0, named(torch.tensor([True, False]), "a"))
    tensor([2., 0.])
    """
    if isinstance(scale, torch.Tensor) and scale.dim():
        raise NotImplementedError("non-scalar scale is not supported")
    names = dims_of(tensor)
    if mask is None or mask is True:
        if _is_identically_one(scale):
            return tensor
        return named(tensor * scale, names)
    if mask is False:
        return named(torch.zeros_like(tensor), names)
    tensor, mask = broadcast_all(tensor, mask)
    if not _is_identically_one(scale):
        tensor = tensor * scale
    return named(torch.where(mask, tensor, tensor.new_zeros(())), dims_of(mask))


def neg(value: Any) -> Any:
    """Negate a packed tensor (or a number), keeping its names."""
    if isinstance(value, torch.Tensor):
        return named(-value, dims_of(value))
    return -value


def exp(value: Any) -> Any:
    """Exponentiate a packed tensor (or a number), keeping its names."""
    if isinstance(value, torch.Tensor):
        return named(value.exp(), dims_of(value))
    return math.exp(value)


def rename_equation(equation: str, *operands: torch.Tensor) -> str:
    """Rewrite the symbols of an einsum equation to the ``_pyro_dims`` names of ``operands``.

    >>> rename_equation("ab,bc->ac", named(torch.zeros(2, 3), "xy"), named(torch.zeros(3, 4), "yz"))
    'xy,yz->xz'
    """
    inputs = equation.split("->")[0].split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"rename_equation: {equation!r} has {len(inputs)} inputs but got {len(operands)} operands")
    names = [dims_of(x) for x in operands]
    if inputs == names:
        return equation  # the common case inside a contraction: nothing to rename
    rename: dict[str, str] = {}
    for symbols, operand in zip(inputs, operands):
        rename.update(zip(symbols, dims_of(operand)))
    return "".join(rename.get(s, s) for s in equation)


def _contract_packed(factors: Iterable[Any], output_dims: str, backend: str, log: bool) -> Any:
    tensors = [f for f in factors if isinstance(f, torch.Tensor)]
    numbers = [f for f in factors if not isinstance(f, torch.Tensor)]
    constant = sum(numbers) if log else math.prod(numbers)
    if not tensors:
        return constant
    present = set("".join(dims_of(t) for t in tensors))
    output = "".join(d for d in output_dims if d in present)
    equation = ",".join(dims_of(t) for t in tensors) + "->" + output
    result: torch.Tensor = opt_einsum.contract(equation, *tensors, backend=backend)
    if numbers:
        result = result + constant if log else result * constant
    return named(result, output)


def sumproduct(factors: Iterable[Any], output_dims: str = "") -> Any:
    """Multiply packed tensors and numbers, then sum out every dim not in ``output_dims``.

    :param factors: packed tensors and numbers.
    :param output_dims: the names to keep, in the result's order (names no factor has are skipped).

    >>> x, y = named(torch.ones(2, 3), "ab"), named(torch.ones(3), "b")
    >>> sumproduct([x, y, 2.0], "a")
    tensor([6., 6.])
    """
    return _contract_packed(list(factors), output_dims, "torch", log=False)


def logsumproductexp(log_factors: Iterable[Any], output_dims: str = "") -> Any:
    """:func:`sumproduct` in log space: add log factors, then log-sum-exp out the other dims.

    :param log_factors: packed tensors and numbers, in log units.
    :param output_dims: the names to keep, in the result's order.

    >>> x = named(torch.zeros(2, 3), "ab")
    >>> logsumproductexp([x], "a")
    tensor([1.0986, 1.0986])
    """
    return _contract_packed(list(log_factors), output_dims, "ember.ops.einsum.torch_log", log=True)
