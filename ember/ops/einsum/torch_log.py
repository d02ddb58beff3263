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

__all__ = ["einsum", "einsum_step", "tensordot", "transpose"]

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


class _Plan:
    """How to compute one equation on operands of given shapes, worked out once."""

    __slots__ = ("kind", "perms", "views", "reduce_dims", "inputs", "output")

    def __init__(self, equation: str, shapes: tuple[torch.Size, ...]) -> None:
        input_part, output = equation.split("->")
        inputs = input_part.split(",")
        self.inputs, self.output = inputs, output
        self.perms: list[tuple[int, ...] | None] = []
        self.views: list[tuple[int, ...] | None] = []
        self.reduce_dims: tuple[int, ...] = ()
        if len(shapes) == 1 and inputs[0] == output:
            self.kind = "clone"
            return
        sizes: dict[str, int] = {}
        repeated = False
        for names, shape in zip(inputs, shapes):
            repeated = repeated or len(set(names)) != len(names)
            sizes.update(zip(names, shape))
        joint = math.prod(sizes.values())
        inputs_numel = sum(math.prod(shape) for shape in shapes)
        if repeated or (joint > _BROADCAST_MAX_NUMEL and joint > 4 * inputs_numel):
            self.kind = "matmul"
            return
        self.kind = "broadcast"
        order = output + "".join(d for d in sizes if d not in output)
        for names, shape in zip(inputs, shapes):
            perm = tuple(names.index(d) for d in order if d in names)
            self.perms.append(None if perm == tuple(range(len(perm))) else perm)
            view = tuple(sizes[d] if d in names else 1 for d in order)
            self.views.append(None if len(names) == len(order) else view)
        self.reduce_dims = tuple(range(len(output), len(order)))


_PLANS: dict[tuple[str, tuple[torch.Size, ...]], _Plan] = {}


def _plan(equation: str, operands: Sequence[torch.Tensor]) -> _Plan:
    key = (equation, tuple(x.shape for x in operands))
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= 4096:
            _PLANS.clear()  # a program with ever-new shapes must not grow this forever
        plan = _PLANS[key] = _Plan(equation, key[1])
    return plan


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


def einsum_step(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """:func:`einsum` for an intermediate step of a contraction: impossible entries may come
    out as the lowest finite float instead of ``-inf`` (both mean probability zero).

    Skipping the restoration of ``-inf`` saves two kernels per step; the contraction's last
    step (:func:`einsum`) restores it.
    """
    plan = _plan(equation, operands)
    if plan.kind == "broadcast":
        parts = []
        for x, perm, view in zip(operands, plan.perms, plan.views):
            if perm is not None:
                x = x.permute(perm)
            if view is not None:
                x = x.reshape(view)
            parts.append(x)
        total = functools.reduce(operator.add, parts) if len(parts) > 1 else parts[0]
        if not plan.reduce_dims:
            return total if len(parts) > 1 else total.clone()
        # Clamping -inf to the lowest finite value keeps logsumexp's gradient finite (0 there).
        return torch.logsumexp(total.clamp(min=torch.finfo(total.dtype).min), plan.reduce_dims)
    if plan.kind == "clone":
        return operands[0].clone()  # a new object: callers attach attributes to results
    return _logsumexp_matmul(plan.inputs, plan.output, operands)


def einsum(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """Log-space einsum: ``log(einsum(equation, *exp(operands)))``, computed stably.

    :param equation: an explicit einsum equation (with ``->``), any symbols.
    :param operands: log-space tensors.

    >>> x = torch.zeros(2, 3)
    >>> einsum("ab->a", x)
    tensor([1.0986, 1.0986])
    """
    result = einsum_step(equation, *operands)
    if result.is_floating_point():
        result = result.masked_fill(result <= torch.finfo(result.dtype).min, -math.inf)
    return result


tensordot = Tensordot(einsum)
