"""The log-sum-product-exp semiring backend: ``einsum`` on log-space tensors.

Pass ``backend="ember.ops.einsum.torch_log"`` to :func:`ember.ops.einsum.contract`. Operands
and result are log values: products become sums and sums become ``logsumexp``. Rows that are
entirely ``-inf`` give ``-inf`` with zero (not NaN) gradients.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Sequence

import torch

from ember.ops.einsum.util import EINSUM_SYMBOLS_BASE, Tensordot

__all__ = ["einsum", "tensordot", "transpose"]

# Broadcasting the operands into the joint tensor is a few fused kernels, far cheaper than
# exp/einsum/log for the small state spaces of enumeration. It costs memory proportional to the
# joint size, so above this many elements (and more than the inputs hold) the matmul path runs.
_BROADCAST_MAX_NUMEL = 2**16


class _SafeLog(torch.autograd.Function):
    """``log`` whose gradient at zero is large and finite instead of infinite."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.log()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        result: torch.Tensor = grad / x.clamp(min=torch.finfo(x.dtype).eps)
        return result


def _safe_log(x: torch.Tensor) -> torch.Tensor:
    result: torch.Tensor = _SafeLog.apply(x)  # type: ignore[no-untyped-call]  # torch.autograd.Function.apply is unannotated
    return result


def transpose(a: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """Permute the dims of ``a`` (opt_einsum's ``transpose`` for this backend)."""
    return a.permute(tuple(axes))


def _align(x: torch.Tensor, names: str, order: str) -> torch.Tensor:
    """View ``x`` (dims ``names``) with dims in ``order``, size 1 where ``x`` lacks one."""
    perm = [names.index(d) for d in order if d in names]
    if perm != list(range(len(perm))):
        x = x.permute(perm)
    if len(names) == len(order):
        return x
    kept = iter(x.shape)
    return x.reshape(tuple(next(kept) if d in names else 1 for d in order))


def _logsumexp_broadcast(inputs: list[str], output: str, contracted: str, operands: Sequence[torch.Tensor]) -> torch.Tensor:
    joint_names = output + contracted
    total = functools.reduce(operator.add, (_align(x, n, joint_names) for x, n in zip(operands, inputs)))
    if not contracted:
        return total if len(operands) > 1 else total.clone()
    finfo = torch.finfo(total.dtype)
    # Clamping -inf to the lowest finite value keeps logsumexp's gradient finite (0 there).
    result = torch.logsumexp(total.clamp(min=finfo.min), tuple(range(len(output), len(joint_names))))
    return result.masked_fill(result <= finfo.min, -math.inf)


def _logsumexp_matmul(inputs: list[str], output: str, operands: Sequence[torch.Tensor]) -> torch.Tensor:
    symbols = sorted(set("".join(inputs)))
    rename = dict(zip(symbols, EINSUM_SYMBOLS_BASE))
    exps = []
    shifts = []
    for x, names in zip(operands, inputs):
        reduce_dims = [i for i, d in enumerate(names) if d not in output]
        shift = x.detach()
        if reduce_dims:
            shift = shift.amax(reduce_dims, keepdim=True)
        shift = shift.clamp(min=torch.finfo(shift.dtype).min)
        exps.append((x - shift).exp())
        kept = "".join(d for d in names if d in output)
        shift = shift.reshape(tuple(s for s, d in zip(shift.shape, names) if d in output))
        shifts.append(_align(shift, kept, output))
    equation = ",".join("".join(rename[d] for d in n) for n in inputs) + "->" + "".join(rename[d] for d in output)
    result = _safe_log(torch.einsum(equation, *exps))
    return functools.reduce(operator.add, shifts, result)


def einsum(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """Log-space einsum: ``log(einsum(equation, *exp(operands)))``, computed stably.

    :param equation: an explicit einsum equation (with ``->``), any symbols.
    :param operands: log-space tensors.

    >>> x = torch.zeros(2, 3)
    >>> einsum("ab->a", x)
    tensor([1.0986, 1.0986])
    """
    input_part, output = equation.split("->")
    inputs = input_part.split(",")
    if len(operands) == 1 and inputs[0] == output:
        return operands[0].clone()  # a new object: callers attach attributes to results
    sizes: dict[str, int] = {}
    repeated = False
    for names, x in zip(inputs, operands):
        repeated = repeated or len(set(names)) != len(names)
        sizes.update(zip(names, x.shape))
    contracted = "".join(d for d in sizes if d not in output)
    joint = math.prod(sizes.values())
    inputs_numel = sum(x.numel() for x in operands)
    if not repeated and (joint <= _BROADCAST_MAX_NUMEL or joint <= 4 * inputs_numel):
        return _logsumexp_broadcast(inputs, output, contracted, operands)
    return _logsumexp_matmul(inputs, output, operands)


tensordot = Tensordot(einsum)
