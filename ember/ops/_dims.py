"""Reading and writing the dim names that packed tensors carry in ``._pyro_dims``.

Pyro marks a packed tensor by setting the attribute ``_pyro_dims`` (one character per dim) on
the tensor object; Ember keeps that attribute name so traces and user code interoperate. These
two helpers give the attribute a type in one place.
"""

from __future__ import annotations

import torch


def dims_of(tensor: torch.Tensor) -> str:
    """The dim names of a packed tensor (raises ``AttributeError`` on an unpacked one)."""
    names: str = tensor._pyro_dims  # type: ignore[attr-defined]  # packed tensors carry their dim names, as in Pyro
    return names


def named(tensor: torch.Tensor, names: str) -> torch.Tensor:
    """Set the dim names of ``tensor`` and return it."""
    tensor._pyro_dims = names  # type: ignore[attr-defined]  # packed tensors carry their dim names, as in Pyro
    return tensor
