"""The log-sum-product-exp backend whose adjoint computes marginals.

Pass ``backend="ember.ops.einsum.torch_marginal"`` to :func:`ember.ops.einsum.contract`. The
forward pass is that of :mod:`ember.ops.einsum.torch_log`; calling ``result._pyro_backward()``
leaves at each leaf marked with :func:`~ember.ops.einsum.adjoint.require_backward` the
unnormalized log marginal of the leaf's dims: the contraction of every factor down to them.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ember.ops.einsum import torch_log
from ember.ops.einsum.adjoint import Backward, Message, backward_of, set_backward, transpose
from ember.ops.einsum.util import Tensordot

__all__ = ["einsum", "einsum_step", "tensordot", "transpose"]


class _EinsumBackward(Backward):
    def __init__(self, equation: str, operands: tuple[torch.Tensor, ...]) -> None:
        self.equation = equation
        self.operands = operands

    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        input_part, output = self.equation.split("->")
        inputs = input_part.split(",")
        factors = list(zip(inputs, self.operands))
        if message is not None:
            factors.append((output, message))  # the outside factor, aligned with the result
        for i, operand in enumerate(self.operands):
            node = backward_of(operand)
            if node is None:
                continue
            # A leaf's marginal includes itself; an inner node's own backward adds its factors.
            others = factors if node.is_leaf else factors[:i] + factors[i + 1 :]
            if not others:
                yield node, None
                continue
            others_names = ",".join(n for n, _ in others)
            target = "".join(d for d in inputs[i] if d in others_names)
            marginal = torch_log.einsum(f"{others_names}->{target}", *(x for _, x in others))
            if target != inputs[i]:
                for pos, d in enumerate(inputs[i]):
                    if d not in target:
                        marginal = marginal.unsqueeze(pos)
                marginal = marginal.expand_as(operand)
            yield node, marginal


def _einsum(equation: str, operands: tuple[torch.Tensor, ...], final: bool) -> torch.Tensor:
    forward = torch_log.einsum if final else torch_log.einsum_step
    result = forward(equation, *operands)
    if any(backward_of(x) is not None for x in operands):
        set_backward(result, _EinsumBackward(equation, operands))
    return result


def einsum(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """Log-space einsum, recording how to compute marginals in the backward pass.

    :param equation: an explicit einsum equation.
    :param operands: log-space tensors.
    """
    return _einsum(equation, operands, final=True)


def einsum_step(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """:func:`einsum` for an intermediate step (see :func:`ember.ops.einsum.torch_log.einsum_step`)."""
    return _einsum(equation, operands, final=False)


tensordot = Tensordot(einsum)
