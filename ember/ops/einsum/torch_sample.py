"""The log-sum-product-exp backend whose adjoint samples (forward filter, backward sample).

Pass ``backend="ember.ops.einsum.torch_sample"`` to :func:`ember.ops.einsum.contract`. The
forward pass is that of :mod:`ember.ops.einsum.torch_log`; calling ``result._pyro_backward()``
then draws the contracted dims from the exact posterior (each contraction samples its own dims
given the values already drawn downstream) and leaves the draws at the leaves marked with
:func:`~ember.ops.einsum.adjoint.require_backward`. All operands must be packed.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ember.ops import packed
from ember.ops._dims import dims_of, named
from ember.ops.einsum import torch_log
from ember.ops.einsum.adjoint import (
    Backward,
    Message,
    backward_of,
    einsum_backward_sample,
    sample_dims_of,
    set_backward,
    transpose,
    unflatten,
)
from ember.ops.einsum.torch_map import joint_logits
from ember.ops.einsum.util import Tensordot

__all__ = ["einsum", "einsum_step", "tensordot", "transpose"]


class _EinsumBackward(Backward):
    def __init__(self, output: str, operands: tuple[torch.Tensor, ...]) -> None:
        self.operands = operands
        self.contracted = set("".join(dims_of(x) for x in operands)) - set(output)

    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        operands = self.operands
        if message is not None:
            # Condition on the values drawn downstream: read every operand off at those values.
            index_dims = dims_of(message)[1:]
            for dim, row in zip(sample_dims_of(message), message.unbind(0)):
                index = named(row, index_dims)
                operands = tuple(packed.gather(x, index, dim) if dim in dims_of(x) else x for x in operands)
        # The draw is batched over every remaining dim it does not contract, including the
        # batch dims of the downstream values.
        present = set("".join(dims_of(x) for x in operands))
        batch = "".join(sorted(present - self.contracted))
        logits, contracted = joint_logits(operands, batch)
        local: Message = None
        if contracted:
            flat_logits = logits.reshape(logits.shape[: len(batch)] + (-1,))
            flat = torch.distributions.Categorical(logits=flat_logits, validate_args=False).sample()  # type: ignore[no-untyped-call]  # torch leaves Categorical.sample unannotated
            local = unflatten(flat, batch, contracted, logits.shape[len(batch) :])
        return einsum_backward_sample(self.operands, local, message)


def _einsum(equation: str, operands: tuple[torch.Tensor, ...], final: bool) -> torch.Tensor:
    renamed = packed.rename_equation(equation, *operands)
    output = renamed.split("->")[1]
    forward = torch_log.einsum if final else torch_log.einsum_step
    result = named(forward(renamed, *operands), output)
    if any(backward_of(x) is not None for x in operands):
        set_backward(result, _EinsumBackward(output, operands))
    return result


def einsum(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """Log-space einsum of packed operands, recording how to sample the contracted dims.

    :param equation: an einsum equation; its symbols are renamed to the operands' names.
    :param operands: packed log-space tensors.
    """
    return _einsum(equation, operands, final=True)


def einsum_step(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """:func:`einsum` for an intermediate step (see :func:`ember.ops.einsum.torch_log.einsum_step`)."""
    return _einsum(equation, operands, final=False)


tensordot = Tensordot(einsum)
