"""Log-space sum-product of packed factors by variable elimination, with the plan cached per structure.

:class:`~ember.infer.traceenum_elbo.TraceEnum_ELBO` needs, for a model whose enumerated
factors all share one plate context, only ``log sum_z prod_f f(z)`` summed over the plates.
The general plated contraction (:func:`ember.ops.contract.contract_tensor_tree`) finds an
einsum path through opt_einsum on every call; an HMM of 100 steps asks it for a 200-operand
path each ``SVI.step``. Here the elimination order, and the permutes and reshapes that line
the factors up, are worked out once per structure (the dims and shapes of the factors, which
make the cache key, so a stale plan cannot be used) and replayed as a few tensor ops per
eliminated variable: broadcast adds and one ``logsumexp``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["LogSumProduct"]


@dataclass(frozen=True)
class _Align:
    """How one input is lined up with a step's layout: a permute, then a reshape."""

    permutation: tuple[int, ...] | None
    shape: tuple[int, ...] | None


@dataclass(frozen=True)
class _Step:
    """Combine the live tensors at ``inputs`` and log-sum-exp out ``reduce`` (layout positions)."""

    inputs: tuple[int, ...]
    aligns: tuple[_Align, ...]
    reduce: tuple[int, ...]


@dataclass(frozen=True)
class _Plan:
    steps: tuple[_Step, ...]
    # The live tensors left at the end (no summed dims remain in them).
    results: tuple[int, ...]


def _align(dims: str, shape: Sequence[int], layout: str) -> _Align:
    present = [d for d in layout if d in dims]
    permutation = tuple(dims.index(d) for d in present)
    sizes = dict(zip(dims, shape))
    target = tuple(sizes[d] if d in sizes else 1 for d in layout)
    return _Align(
        None if permutation == tuple(range(len(dims))) else permutation,
        None if target == tuple(sizes[d] for d in present) else target,
    )


def _make_plan(structure: Sequence[tuple[str, tuple[int, ...]]], sum_dims: frozenset[str]) -> _Plan:
    """Greedy elimination: always the summed dim whose combined factor is smallest."""
    live: dict[int, tuple[str, tuple[int, ...]]] = dict(enumerate(structure))
    next_id = len(structure)
    sizes = {d: s for dims, shape in structure for d, s in zip(dims, shape)}
    pending = {d for dims, _ in structure for d in dims if d in sum_dims}
    steps: list[_Step] = []
    # Slot ids are positions in the runtime list of live tensors (appended, never removed).
    while pending:
        best: tuple[float, str, list[int], str] | None = None
        for d in sorted(pending):
            group = [i for i, (dims, _) in live.items() if d in dims]
            union = "".join(dict.fromkeys("".join(live[i][0] for i in group)))
            cost = math.prod(sizes[x] for x in union)
            if best is None or cost < best[0]:
                best = (cost, d, group, union)
        assert best is not None
        _, _, group, layout = best
        # Every summed dim found only in this group goes out now.
        outside = "".join(dims for i, (dims, _) in live.items() if i not in group)
        reduce_dims = [d for d in layout if d in pending and d not in outside]
        aligns = tuple(_align(live[i][0], live[i][1], layout) for i in group)
        reduce = tuple(layout.index(d) for d in reduce_dims)
        steps.append(_Step(tuple(group), aligns, reduce))
        out_dims = "".join(d for d in layout if d not in reduce_dims)
        for i in group:
            del live[i]
        live[next_id] = (out_dims, tuple(sizes[d] for d in out_dims))
        next_id += 1
        pending.difference_update(reduce_dims)
    return _Plan(tuple(steps), tuple(live))


class LogSumProduct:
    """``log sum_{sum_dims} exp(sum of factors)`` for packed factors, summed over the dims kept.

    Plans are cached by structure (each factor's dim names and shape, and the summed dims).

    :param max_plans: how many structures to keep plans for.

    >>> x = torch.tensor([0.0, 1.0]); x._pyro_dims = "a"
    >>> y = torch.zeros(2, 3); y._pyro_dims = "ab"
    >>> total = LogSumProduct()([x, y], {"a", "b"})
    >>> bool(torch.isclose(total, torch.tensor(3 * (1 + torch.e)).log()))
    True
    """

    def __init__(self, max_plans: int = 64) -> None:
        self.max_plans = max_plans
        self._plans: dict[Hashable, _Plan] = {}

    def __call__(self, factors: Sequence[torch.Tensor], sum_dims: set[str] | frozenset[str]) -> torch.Tensor:
        structure = tuple((getattr(f, "_pyro_dims", ""), tuple(f.shape)) for f in factors)
        key = (structure, frozenset(sum_dims))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= self.max_plans:
                self._plans.clear()
            plan = self._plans[key] = _make_plan(structure, frozenset(sum_dims))
        live = list(factors)
        for step in plan.steps:
            total: torch.Tensor | None = None
            for i, align in zip(step.inputs, step.aligns):
                x = live[i]
                if align.permutation is not None:
                    x = x.permute(align.permutation)
                if align.shape is not None:
                    x = x.reshape(align.shape)
                total = x if total is None else total + x
            assert total is not None
            live.append(torch.logsumexp(total, step.reduce) if step.reduce else total)
        results = [live[i].sum() for i in plan.results]
        return results[0] if len(results) == 1 else torch.stack(results).sum()
