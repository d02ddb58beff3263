"""Tensor rings: the sum and product operations that plated contraction is written in.

A ring contracts packed tensors two ways: *sum* dims (enumerated variables) are eliminated by
:meth:`Ring.sumproduct`, *plate* dims (an *ordinal* is a frozenset of plate names) by
:meth:`Ring.product`. :class:`LinearRing` works on probabilities, :class:`LogRing` on log
probabilities; :class:`MapRing`, :class:`SampleRing` and :class:`MarginalRing` are log rings
whose results also support a backward pass (argmax, posterior sample, marginals). Results are
memoized in ``cache`` so that :func:`opt_einsum.shared_intermediates` can share work.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from typing import Any, Iterable

import torch

from ember.ops._dims import dims_of, named
from ember.ops.einsum import contract
from ember.ops.einsum.adjoint import SAMPLE_SYMBOL, Backward, Message, backward_of, sample_dims_of, set_backward, with_sample_dims

__all__ = ["BACKEND_TO_RING", "LinearRing", "LogRing", "MapRing", "MarginalRing", "Ring", "SampleRing"]


class Ring(ABC):
    """A tensor ring over packed tensors, with a memo ``cache``.

    Dims are characters; an ordinal is a frozenset of plate dims.

    :param cache: an optional memo (e.g. from :func:`opt_einsum.shared_intermediates`).
    :param dim_to_size: the size of each dim, needed by :meth:`broadcast`.
    """

    _backend = "torch"

    def __init__(self, cache: dict[Any, Any] | None = None, dim_to_size: dict[str, int] | None = None) -> None:
        self._cache: dict[Any, Any] = {} if cache is None else cache
        self._dim_to_size: dict[str, int] = {} if dim_to_size is None else dim_to_size

    def _hash_by_id(self, tensor: torch.Tensor) -> int:
        # Keeping the tensor alive in the cache keeps its id from being reused by another tensor.
        key = id(tensor)
        if self._cache.setdefault(("tensor", key), tensor) is not tensor:
            raise RuntimeError("ring cache: a tensor id was reused")
        return key

    def sumproduct(self, terms: list[torch.Tensor], dims: Iterable[str]) -> torch.Tensor:
        """Multiply ``terms`` and sum out ``dims``; the result's dims are the rest, sorted.

        :param terms: packed tensors.
        :param dims: the sum dims to eliminate.
        """
        names = [dims_of(t) for t in terms]
        output = "".join(sorted(set("".join(names)).difference(dims)))
        return named(contract(",".join(names) + "->" + output, *terms, backend=self._backend), output)

    @abstractmethod
    def product(self, term: torch.Tensor, ordinal: frozenset[str]) -> torch.Tensor:
        """Product-contract the plate dims of ``term`` that are in ``ordinal``.

        :param term: a packed tensor.
        :param ordinal: the plates to contract.
        """

    def broadcast(self, term: torch.Tensor, ordinal: frozenset[str]) -> torch.Tensor:
        """Expand ``term`` along the plates of ``ordinal`` it lacks (new dims on the left).

        :param term: a packed tensor.
        :param ordinal: plates.
        """
        names = dims_of(term)
        missing = "".join(sorted(set(ordinal).difference(names)))
        if not missing:
            return term
        key = ("broadcast", self._hash_by_id(term), missing)
        cached: torch.Tensor | None = self._cache.get(key)
        if cached is None:
            shape = tuple(self._dim_to_size[d] for d in missing)
            cached = self._cache[key] = named(term.expand(shape + term.shape), missing + names)
        return cached

    @abstractmethod
    def inv(self, term: torch.Tensor) -> torch.Tensor:
        """The reciprocal of ``term`` in this ring (used by inclusion-exclusion).

        :param term: a packed tensor.
        """

    def global_local(
        self, term: torch.Tensor, dims: Iterable[str], ordinal: frozenset[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Split ``term`` into a global and a local part by inclusion-exclusion.

        With ``s = sumproduct([term], dims)``, the global part is ``product(s, ordinal)`` and
        the local part ``term / s``; their product, summed over ``dims`` inside the plates,
        is the full contraction.

        :param term: a packed tensor.
        :param dims: the (non-empty) sum dims to eliminate.
        :param ordinal: the plates to contract.
        :returns: ``(global_part, local_part)``.
        """
        dims = frozenset(dims)
        if not dims:
            raise ValueError("global_local: dims was empty, use product() instead")
        key = ("global_local", self._hash_by_id(term), dims, ordinal)
        cached: tuple[torch.Tensor, torch.Tensor] | None = self._cache.get(key)
        if cached is None:
            term_sum = self.sumproduct([term], dims)
            global_part = self.product(term_sum, ordinal)
            local_part = self.sumproduct([term, self.inv(term_sum)], set())
            cached = self._cache[key] = (global_part, local_part)
        return cached


class _PlateReducingRing(Ring):
    """A ring whose plate product is a tensor reduction (``prod`` or ``sum``) per plate dim."""

    def _reduce(self, term: torch.Tensor, pos: int) -> torch.Tensor:
        raise NotImplementedError

    def product(self, term: torch.Tensor, ordinal: frozenset[str]) -> torch.Tensor:
        """Product-contract the plate dims of ``term`` that are in ``ordinal``.

        :param term: a packed tensor.
        :param ordinal: the plates to contract.
        """
        for dim in sorted(ordinal, reverse=True):
            names = dims_of(term)
            pos = names.find(dim)
            if pos < 0:
                continue
            key = ("product", self._hash_by_id(term), dim)
            reduced: torch.Tensor | None = self._cache.get(key)
            if reduced is None:
                reduced = self._cache[key] = named(self._reduce(term, pos), names.replace(dim, ""))
            term = reduced
        return term


class LinearRing(_PlateReducingRing):
    """Sum-product in linear space: sums are sums, plate products are products.

    >>> ring = LinearRing()
    >>> x = named(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "ai")
    >>> ring.product(ring.sumproduct([x], {"a"}), frozenset("i"))
    tensor(24.)
    """

    _backend = "torch"

    def _reduce(self, term: torch.Tensor, pos: int) -> torch.Tensor:
        return term.prod(pos)

    def inv(self, term: torch.Tensor) -> torch.Tensor:
        """The reciprocal of ``term``, clamped to stay finite (so ``inf / inf`` is not NaN)."""
        key = ("inv", self._hash_by_id(term))
        result: torch.Tensor | None = self._cache.get(key)
        if result is None:
            value = term.reciprocal().clamp(max=torch.finfo(term.dtype).max)
            result = self._cache[key] = named(value, dims_of(term))
        return result


class LogRing(_PlateReducingRing):
    """Sum-product in log space: sums are ``logsumexp``, plate products are sums.

    >>> ring = LogRing()
    >>> x = named(torch.zeros(2, 3), "ai")
    >>> ring.product(ring.sumproduct([x], {"a"}), frozenset("i"))
    tensor(2.0794)
    """

    _backend = "ember.ops.einsum.torch_log"

    def _reduce(self, term: torch.Tensor, pos: int) -> torch.Tensor:
        return term.sum(pos)

    def inv(self, term: torch.Tensor) -> torch.Tensor:
        """The negation of ``term``, clamped to stay finite (so ``inf - inf`` is not NaN)."""
        key = ("inv", self._hash_by_id(term))
        result: torch.Tensor | None = self._cache.get(key)
        if result is None:
            value = (-term).clamp(max=torch.finfo(term.dtype).max)
            result = self._cache[key] = named(value, dims_of(term))
        return result


class _SampleProductBackward(Backward):
    """Backward pass of a plate product for the sampling rings: copy the draws across the plates."""

    def __init__(self, ring: Ring, term: torch.Tensor, node: Backward, ordinal: frozenset[str]) -> None:
        self.ring = ring
        self.term = term
        self.node = node
        self.ordinal = ordinal

    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        if message is not None:
            sampled = sample_dims_of(message)
            message = self.ring.broadcast(message, self.ordinal)
            names = dims_of(message)
            if not names.startswith(SAMPLE_SYMBOL):
                order = SAMPLE_SYMBOL + names.replace(SAMPLE_SYMBOL, "")
                message = named(message.permute(tuple(map(names.index, order))), order)
            message = with_sample_dims(message, sampled)
        yield self.node, message


class MapRing(LogRing):
    """A log ring with max in place of sum, whose backward pass finds the jointly best values."""

    _backend = "ember.ops.einsum.torch_map"

    def product(self, term: torch.Tensor, ordinal: frozenset[str]) -> torch.Tensor:
        """Product-contract plates, recording the backward pass if ``term`` needs one."""
        result = super().product(term, ordinal)
        node = backward_of(term)
        if node is not None:
            set_backward(result, _SampleProductBackward(self, term, node, ordinal))
        return result


class SampleRing(LogRing):
    """A log ring whose backward pass draws sum dims from the exact posterior."""

    _backend = "ember.ops.einsum.torch_sample"

    def product(self, term: torch.Tensor, ordinal: frozenset[str]) -> torch.Tensor:
        """Product-contract plates, recording the backward pass if ``term`` needs one."""
        result = super().product(term, ordinal)
        node = backward_of(term)
        if node is not None:
            set_backward(result, _SampleProductBackward(self, term, node, ordinal))
        return result


class _MarginalProductBackward(Backward):
    """Backward pass of a plate product for :class:`MarginalRing`, by inclusion-exclusion."""

    def __init__(self, ring: Ring, term: torch.Tensor, node: Backward, ordinal: frozenset[str], result: torch.Tensor) -> None:
        self.ring = ring
        self.term = term
        self.node = node
        self.ordinal = ordinal
        self.result = weakref.ref(result)  # the result owns this node

    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        result = self.result()
        if result is None:
            raise RuntimeError("MarginalRing: the product's result was freed before its backward pass")
        factors = [result]
        if message is not None:
            factors.append(named(message, dims_of(result)))
        if self.node.is_leaf:
            out = self.ring.broadcast(self.ring.sumproduct(factors, set()), self.ordinal)
        else:
            factors.append(self.ring.inv(self.term))
            out = self.ring.sumproduct(factors, set())
        yield self.node, out


class MarginalRing(LogRing):
    """A log ring whose backward pass computes the log marginal of each leaf's dims."""

    _backend = "ember.ops.einsum.torch_marginal"

    def product(self, term: torch.Tensor, ordinal: frozenset[str]) -> torch.Tensor:
        """Product-contract plates, recording the backward pass if ``term`` needs one."""
        result = super().product(term, ordinal)
        node = backward_of(term)
        if node is not None:
            set_backward(result, _MarginalProductBackward(self, term, node, ordinal, result))
        return result


#: The ring for each einsum backend name (Pyro's names included).
BACKEND_TO_RING: dict[str, type[Ring]] = {
    "torch": LinearRing,
    "ember.ops.einsum.torch_log": LogRing,
    "ember.ops.einsum.torch_map": MapRing,
    "ember.ops.einsum.torch_sample": SampleRing,
    "ember.ops.einsum.torch_marginal": MarginalRing,
    "pyro.ops.einsum.torch_log": LogRing,
    "pyro.ops.einsum.torch_map": MapRing,
    "pyro.ops.einsum.torch_sample": SampleRing,
    "pyro.ops.einsum.torch_marginal": MarginalRing,
}
