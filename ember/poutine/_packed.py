"""Packed tensors: log densities with size-1 dims squeezed out and the rest named by symbols."""

from __future__ import annotations

from typing import Any, Mapping

import torch


def pack(value: Any, dim_to_symbol: Mapping[int, str]) -> Any:
    """Squeeze ``value`` and record its remaining dims as symbols in ``value._pyro_dims``.

    Numbers, booleans and ``None`` pass through unchanged.

    :param dim_to_symbol: the symbol of each allowed (negative) dim.
    :raises ValueError: if a dim of size > 1 has no symbol.
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
    packed = value.squeeze()
    packed._pyro_dims = "".join(symbols)  # type: ignore[attr-defined]  # packed tensors carry their dim names, as in Pyro
    return packed
