"""Log-space contraction of a chain of factors by a parallel scan, for Markov models.

An HMM's enumerated factors form a chain: pairwise factors over consecutive variables
``(x[t-1], x[t])``, unary factors over single variables, and factors over kept (batch) dims
only. Pairwise elimination costs one small contraction per factor, each a few kernels and
autograd nodes. Stacking the chain's matrices and multiplying neighbours pairwise in the
log semiring halves the chain per round, so the whole contraction is ``O(log T)`` batched
kernels instead of ``O(T)`` small ones: the cost that dominates TraceEnum_ELBO on an HMM.

:func:`chain_plan` recognizes such an equation (once per equation and shapes);
:meth:`ChainPlan.run` evaluates it.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["ChainPlan", "chain_plan"]

# Below this many pairwise factors the scan saves too little to pay for the stacking.
_MIN_EDGES = 4
# The scan multiplies state matrices (S^3 per product, where the sequential forward algorithm
# does S^2 per step) and its first round holds E/2 * batch * S^3 elements: above this many it
# would trade a few kernels for real memory and arithmetic, so large state spaces go pairwise.
_MAX_ROUND_NUMEL = 2**22


_Term = tuple[int, tuple[int, ...], tuple[int, ...]]  # (operand index, permutation, view shape)


def _uniform(terms: Sequence[_Term], shapes: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The common (permutation, view) of ``terms`` if all have it and the same shape."""
    first = terms[0]
    pattern = (first[1], first[2], tuple(shapes[first[0]]))
    if all((t[1], t[2], tuple(shapes[t[0]])) == pattern for t in terms):
        return first[1], first[2]
    return None


class ChainPlan:
    """How to align each operand of one chain equation into stacked unary and pairwise factors.

    When every edge has one factor of the same layout (the usual HMM), the raw operands are
    stacked and aligned once, as one tensor; otherwise each factor is aligned on its own.
    """

    def __init__(
        self,
        batch_shape: tuple[int, ...],
        states: int,
        shapes: Sequence[Sequence[int]],
        edge_terms: list[list[_Term]],
        unary_terms: list[list[_Term]],
        batch_terms: list[_Term],
    ) -> None:
        self.batch_shape = batch_shape
        self.states = states
        self.edge_terms = edge_terms  # per edge
        self.unary_terms = unary_terms  # per variable
        self.batch_terms = batch_terms  # factors over output dims only
        self.edge_layout = None
        if all(len(group) == 1 for group in edge_terms):
            self.edge_layout = _uniform([group[0] for group in edge_terms], shapes)
        # The first unary factor of each variable, stacked when they share a layout; the rest
        # ("extras", e.g. an initial-state prior) are added one by one.
        self.unary_layout = None
        if all(unary_terms):
            self.unary_layout = _uniform([group[0] for group in unary_terms], shapes)
        firsts = 1 if self.unary_layout is not None else 0
        self.extras = [(k, group[firsts:]) for k, group in enumerate(unary_terms) if group[firsts:]]

    @staticmethod
    def _aligned(operands: Sequence[torch.Tensor], terms: Sequence[_Term]) -> torch.Tensor | None:
        total: torch.Tensor | None = None
        for index, perm, view in terms:
            x = operands[index]
            if perm:
                x = x.permute(perm)
            if view:
                x = x.reshape(view)
            total = x if total is None else total + x
        return total

    def _stack_uniform(self, operands: Sequence[torch.Tensor], terms: Sequence[_Term], layout: tuple[tuple[int, ...], tuple[int, ...]], event: tuple[int, ...]) -> torch.Tensor:
        perm, view = layout
        stacked = torch.stack([operands[t[0]] for t in terms])
        if perm:
            stacked = stacked.permute((0,) + tuple(p + 1 for p in perm))
        if view:
            stacked = stacked.reshape((len(terms),) + view)
        shape = (len(terms),) + self.batch_shape + event
        return stacked if stacked.shape == shape else stacked.expand(shape)

    def _stack(self, operands: Sequence[torch.Tensor], groups: Sequence[Sequence[_Term]], event: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        shape = self.batch_shape + event
        parts = []
        for group in groups:
            part = self._aligned(operands, group)
            if part is None:
                part = like.new_zeros(()).expand(shape)
            elif part.shape != shape:
                part = part.expand(shape)
            parts.append(part)
        return torch.stack(parts)

    def run(self, operands: Sequence[torch.Tensor]) -> torch.Tensor:
        """Contract ``operands`` (log space) to the output dims, in output order."""
        like = operands[0]
        S = self.states
        if self.edge_layout is not None:
            matrices = self._stack_uniform(operands, [g[0] for g in self.edge_terms], self.edge_layout, (S, S))
        else:
            matrices = self._stack(operands, self.edge_terms, (S, S), like)
        # Unary factors of a variable join the rows of the edge leaving it; those of the last
        # variable join the columns of the final product, those of the first may join its rows.
        last_unary: torch.Tensor | None = None
        if self.unary_layout is not None:
            unary = self._stack_uniform(operands, [g[0] for g in self.unary_terms], self.unary_layout, (S,))
            matrices = matrices + unary[:-1].unsqueeze(-1)
            last_unary = unary[-1]
        elif any(self.unary_terms[:-1]):
            matrices = matrices + self._stack(operands, self.unary_terms[:-1], (S,), like).unsqueeze(-1)
            last_unary = self._aligned(operands, self.unary_terms[-1])
        else:
            last_unary = self._aligned(operands, self.unary_terms[-1])
        first_rows: torch.Tensor | None = None
        if self.unary_layout is not None:
            for k, terms in self.extras:
                extra = self._aligned(operands, terms)
                assert extra is not None
                if k == 0:
                    first_rows = extra
                elif k == len(self.unary_terms) - 1:
                    last_unary = extra if last_unary is None else last_unary + extra
                else:
                    row = matrices[k : k + 1] + extra.unsqueeze(-1)
                    matrices = torch.cat([matrices[:k], row, matrices[k + 1 :]])
        finfo = torch.finfo(torch.result_type(matrices, last_unary) if last_unary is not None else matrices.dtype)
        while matrices.shape[0] > 1:
            n = matrices.shape[0]
            left = matrices[0 : n - 1 : 2].unsqueeze(-1)
            right = matrices[1:n:2].unsqueeze(-3)
            # Clamping -inf to the lowest finite value keeps logsumexp's gradient finite.
            product = torch.logsumexp((left + right).clamp(min=finfo.min), -2)
            matrices = torch.cat([product, matrices[n - 1 :]]) if n % 2 else product
        final = matrices[0]
        if first_rows is not None:
            final = final + first_rows.unsqueeze(-1)
        if last_unary is not None:
            final = final + last_unary.unsqueeze(-2)
        result = torch.logsumexp(final.clamp(min=finfo.min), (-2, -1))
        extra = self._aligned(operands, self.batch_terms)
        if extra is not None:
            result = result + extra
        result = result.masked_fill(result <= finfo.min, -math.inf)
        if result.shape != self.batch_shape:
            result = result.expand(self.batch_shape).contiguous()
        return result


def _alignment(names: str, shape: Sequence[int], batch: str, sizes: dict[str, int], tail: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    # Empty tuples mark the identity permutation and a reshape to the same shape, both skipped.
    order = [d for d in batch if d in names] + list(tail)
    perm = tuple(names.index(d) for d in order)
    view = tuple(sizes[d] if d in names else 1 for d in batch) + tuple(sizes[d] for d in tail)
    permuted_shape = tuple(shape[i] for i in perm)
    return (() if perm == tuple(range(len(perm))) else perm), (() if view == permuted_shape else view)


def chain_plan(equation: str, shapes: Sequence[Sequence[int]]) -> ChainPlan | None:
    """A :class:`ChainPlan` if ``equation``'s summed dims form a chain of equal-size variables.

    Every input may hold at most two summed dims; the pairs must link the summed dims into one
    path; output dims act as batch dims.

    :returns: the plan, or ``None`` if the equation is not such a chain.
    """
    input_part, output = equation.split("->")
    inputs = input_part.split(",")
    if len(inputs) < 2 * _MIN_EDGES:
        return None
    sizes: dict[str, int] = {}
    for names, shape in zip(inputs, shapes):
        if len(set(names)) != len(names):
            return None
        for d, size in zip(names, shape):
            if sizes.setdefault(d, size) != size:
                return None
    summed = [d for d in sizes if d not in output]
    if not summed:
        return None
    states = sizes[summed[0]]
    if any(sizes[d] != states for d in summed):
        return None
    neighbours: dict[str, set[str]] = {d: set() for d in summed}
    term_dims = []
    for names in inputs:
        own = [d for d in names if d not in output]
        if len(own) > 2:
            return None
        if len(own) == 2:
            a, b = own
            neighbours[a].add(b)
            neighbours[b].add(a)
        term_dims.append(own)
    # A path: degrees at most 2, two ends, connected (so no cycle).
    if any(len(n) > 2 for n in neighbours.values()):
        return None
    ends = [d for d, n in neighbours.items() if len(n) == 1]
    if len(ends) != 2:
        return None
    path = [min(ends)]
    while len(path) < len(summed):
        following = [d for d in neighbours[path[-1]] if len(path) < 2 or d != path[-2]]
        if not following:
            return None
        path.append(following[0])
    if len(set(path)) != len(summed) or len(path) - 1 < _MIN_EDGES:
        return None
    position = {d: k for k, d in enumerate(path)}
    batch = output
    edge_terms: list[list[_Term]] = [[] for _ in path[1:]]
    unary_terms: list[list[_Term]] = [[] for _ in path]
    batch_terms: list[_Term] = []
    for index, (names, own) in enumerate(zip(inputs, term_dims)):
        if len(own) == 2:
            first, second = sorted(own, key=position.__getitem__)
            if position[second] != position[first] + 1:
                return None
            perm, view = _alignment(names, shapes[index], batch, sizes, first + second)
            edge_terms[position[first]].append((index, perm, view))
        elif len(own) == 1:
            perm, view = _alignment(names, shapes[index], batch, sizes, own[0])
            unary_terms[position[own[0]]].append((index, perm, view))
        else:
            perm, view = _alignment(names, shapes[index], batch, sizes, "")
            batch_terms.append((index, perm, view))
    batch_shape = tuple(sizes[d] for d in batch)
    if (len(path) - 1) // 2 * math.prod(batch_shape) * states**3 > _MAX_ROUND_NUMEL:
        return None
    return ChainPlan(batch_shape, states, shapes, edge_terms, unary_terms, batch_terms)
