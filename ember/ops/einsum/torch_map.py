"""The max-product semiring backend, whose adjoint is the argmax (Viterbi backtracking).

Pass ``backend="ember.ops.einsum.torch_map"`` to :func:`ember.ops.einsum.contract`. The forward
pass maximizes log-space products over contracted dims; if an operand was marked with
:func:`~ember.ops.einsum.adjoint.require_backward`, calling ``result._pyro_backward()``
afterwards leaves the jointly most likely values of the contracted dims at the leaves. All
operands must be packed (carry ``._pyro_dims``).
"""

from __future__ import annotations

import functools
import operator
from typing import Iterable

import torch

from ember.ops import packed
from ember.ops._dims import dims_of, named
from ember.ops.einsum.adjoint import (
    Backward,
    Message,
    backward_of,
    einsum_backward_sample,
    set_backward,
    transpose,
    unflatten,
)
from ember.ops.einsum.util import Tensordot

__all__ = ["einsum", "tensordot", "transpose"]


class _EinsumBackward(Backward):
    def __init__(self, operands: tuple[torch.Tensor, ...], argmax: Message) -> None:
        self.operands = operands
        self.argmax = argmax

    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        return einsum_backward_sample(self.operands, self.argmax, message)


def joint_logits(operands: tuple[torch.Tensor, ...], output: str) -> tuple[torch.Tensor, str]:
    """The sum of packed log operands over all their dims, output dims first then the rest sorted."""
    contracted = "".join(sorted(set("".join(dims_of(x) for x in operands)) - set(output)))
    total = functools.reduce(operator.add, packed.broadcast_all(*operands, dims=output + contracted))
    return total, contracted


def einsum(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """Max-product einsum of packed log-space operands, recording the argmax for the backward pass.

    :param equation: an einsum equation; its symbols are renamed to the operands' names.
    :param operands: packed log-space tensors.

    >>> x = packed.pack(torch.tensor([[0.0, 2.0], [1.0, 0.0]]), {-2: "a", -1: "b"})
    >>> einsum("ab->a", x)
    tensor([2., 1.])
    """
    output = packed.rename_equation(equation, *operands).split("->")[1]
    needs_backward = any(backward_of(x) is not None for x in operands)
    total, contracted = joint_logits(operands, output)
    argmax: Message = None
    if contracted:
        kept_shape = total.shape[: len(output)]
        result, flat = total.reshape(kept_shape + (-1,)).max(-1)
        if needs_backward:
            argmax = unflatten(flat, output, contracted, total.shape[len(output) :])
    else:
        result = total[...] if total is operands[0] else total  # a new object
    named(result, output)
    if needs_backward:
        set_backward(result, _EinsumBackward(operands, argmax))
    return result


tensordot = Tensordot(einsum)
