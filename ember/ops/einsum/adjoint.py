"""The adjoint (backward) pass of semiring contractions: argmax, sampling and marginals.

A forward contraction with the ``torch_map``, ``torch_sample`` or ``torch_marginal`` backend
records, on each result, a :class:`Backward` node in ``result._pyro_backward``. Calling the
root's node walks the contraction backwards, depth first: each node turns the message it
receives into messages for the operands it was computed from. Leaves marked with
:func:`require_backward` store what reaches them in ``tensor._pyro_backward_result``.

Messages of the sampling backends are *sample tensors*: integer tensors whose dim 0 lists the
sampled dims (their names in ``._pyro_sample_dims``) and whose other dims are named batch dims
(``._pyro_dims`` is :data:`SAMPLE_SYMBOL` followed by the batch names). Messages of the
marginal backend are log-space tensors aligned with the operand they are sent to.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from typing import Iterable, Iterator, Sequence

import torch

from ember.ops import packed
from ember.ops._dims import dims_of, named

__all__ = [
    "SAMPLE_SYMBOL",
    "Backward",
    "einsum_backward_sample",
    "require_backward",
    "transpose",
    "unflatten",
]

#: The name of dim 0 of a sample tensor. A space sorts before every letter, so sorting the
#: names of a sample tensor keeps this dim first.
SAMPLE_SYMBOL = " "

Message = torch.Tensor | None


def sample_dims_of(sample: torch.Tensor) -> str:
    """The names of the dims a sample tensor holds values for (one per row of dim 0)."""
    names: str = sample._pyro_sample_dims  # type: ignore[attr-defined]  # sample tensors carry their sampled dims, as in Pyro
    return names


def with_sample_dims(sample: torch.Tensor, names: str) -> torch.Tensor:
    """Record the names of the dims ``sample`` holds values for and return it."""
    sample._pyro_sample_dims = names  # type: ignore[attr-defined]  # sample tensors carry their sampled dims, as in Pyro
    return sample


class Backward(ABC):
    """A node of the adjoint graph: turns one incoming message into messages for its inputs."""

    is_leaf: bool = False

    def __call__(self) -> None:
        """Run the whole backward pass from this node, depth first, with an empty message."""
        stack: list[tuple[Backward, Message]] = [(self, None)]
        while stack:
            node, message = stack.pop()
            stack.extend(node.process(message))

    @abstractmethod
    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        """The messages (and the nodes to send them to) that ``message`` implies.

        :param message: what reached this node, or ``None`` at the root.
        """


class _LeafBackward(Backward):
    is_leaf = True

    def __init__(self, target: torch.Tensor) -> None:
        # A weak reference: the tensor owns this node, so a strong one would be a cycle.
        self.target = weakref.ref(target)

    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        target = self.target()
        if target is not None:
            target._pyro_backward_result = message  # type: ignore[attr-defined]  # leaves carry their adjoint, as in Pyro
        return ()


def require_backward(tensor: torch.Tensor) -> None:
    """Mark ``tensor`` as a leaf of the adjoint graph: the backward pass stores its result there.

    After a contraction with a sampling or marginal backend and a call to the result's
    ``_pyro_backward()``, ``tensor._pyro_backward_result`` holds the leaf's message.

    :param tensor: an operand of a later contraction.
    """
    tensor._pyro_backward = _LeafBackward(tensor)  # type: ignore[attr-defined]  # the adjoint graph lives on tensors, as in Pyro


def backward_of(tensor: torch.Tensor) -> Backward | None:
    """The adjoint node of ``tensor``, or ``None`` if it needs no backward pass."""
    node: Backward | None = getattr(tensor, "_pyro_backward", None)
    return node


def set_backward(tensor: torch.Tensor, node: Backward) -> torch.Tensor:
    """Attach the adjoint node ``node`` to ``tensor`` and return it."""
    tensor._pyro_backward = node  # type: ignore[attr-defined]  # the adjoint graph lives on tensors, as in Pyro
    return tensor


class _TransposeBackward(Backward):
    def __init__(self, node: Backward, axes: Sequence[int]) -> None:
        self.node = node
        self.inverse = [0] * len(axes)
        for i, j in enumerate(axes):
            self.inverse[j] = i

    def process(self, message: Message) -> Iterable[tuple[Backward, Message]]:
        # Sample messages are named, so only positional (marginal) messages need permuting back.
        if message is not None and not hasattr(message, "_pyro_sample_dims"):
            message = message.permute(self.inverse)
        yield self.node, message


def transpose(a: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """Permute ``a``'s dims, keeping its names and its place in the adjoint graph.

    :param a: a tensor, possibly packed.
    :param axes: the permutation, as for :meth:`torch.Tensor.permute`.
    """
    result = a.permute(tuple(axes))
    names = getattr(a, "_pyro_dims", None)
    if names is not None:
        named(result, "".join(names[i] for i in axes))
    node = backward_of(a)
    if node is not None:
        set_backward(result, _TransposeBackward(node, axes))
    return result


def _align_sample(sample: torch.Tensor, batch: str, sizes: dict[str, int]) -> torch.Tensor:
    names = dims_of(sample)[1:]
    sample = sample.permute([0] + [1 + names.index(d) for d in batch if d in names])
    rows = sample.size(0)
    sample = sample.reshape((rows,) + tuple(sizes[d] if d in names else 1 for d in batch))
    return sample.expand((rows,) + tuple(sizes[d] for d in batch))


def _merge_samples(local: Message, upstream: Message) -> Message:
    if local is None:
        return upstream
    if upstream is None:
        return local
    upstream_dims = sample_dims_of(upstream)
    local_dims = sample_dims_of(local)
    if not set(local_dims).isdisjoint(upstream_dims):
        raise ValueError(f"a dim was sampled twice: {local_dims!r} and {upstream_dims!r}")
    # The local choice depends on the upstream values: read it off at those values.
    index_dims = dims_of(upstream)[1:]
    for dim, row in zip(upstream_dims, upstream.unbind(0)):
        if dim in dims_of(local):
            sample_dims = sample_dims_of(local)
            local = with_sample_dims(packed.gather(local, named(row, index_dims), dim), sample_dims)
    sizes: dict[str, int] = {}
    for part in (local, upstream):
        sizes.update(zip(dims_of(part)[1:], part.shape[1:]))
    batch = "".join(sorted(sizes))
    merged = torch.cat([_align_sample(local, batch, sizes), _align_sample(upstream, batch, sizes)])
    return with_sample_dims(named(merged, SAMPLE_SYMBOL + batch), local_dims + upstream_dims)


def _restrict(sample: torch.Tensor, dims: str) -> Message:
    sampled = sample_dims_of(sample)
    wanted = "".join(sorted(set(dims).intersection(sampled)))
    if not wanted:
        return None
    if len(wanted) == len(sampled):
        return sample
    rows = sample[[sampled.index(d) for d in wanted]]
    return with_sample_dims(named(rows, dims_of(sample)), wanted)


def einsum_backward_sample(
    operands: Sequence[torch.Tensor], sample1: Message, sample2: Message
) -> Iterator[tuple[Backward, Message]]:
    """Combine a contraction's own sample with the one it received, and route it to operands.

    Each operand that needs a backward pass gets the rows of the combined sample for the dims
    it has (``None`` if it has none of them).

    :param operands: the packed operands of the contraction.
    :param sample1: the sample this contraction drew for its contracted dims, or ``None``.
    :param sample2: the sample that reached this contraction from downstream, or ``None``.
    """
    sample = _merge_samples(sample1, sample2)
    for x in operands:
        node = backward_of(x)
        if node is not None:
            yield node, None if sample is None else _restrict(sample, dims_of(x))


def unflatten(flat_sample: torch.Tensor, output_dims: str, contract_dims: str, contract_shape: Sequence[int]) -> torch.Tensor:
    """Turn indices into the flattened contracted dims into a sample tensor, one row per dim.

    :param flat_sample: indices into ``prod(contract_shape)``, with dims named ``output_dims``.
    :param output_dims: the names of ``flat_sample``'s dims.
    :param contract_dims: the names of the contracted dims, in flattening order.
    :param contract_shape: their sizes.

    >>> s = unflatten(torch.tensor([5]), "a", "bc", (2, 3))
    >>> s.tolist(), s._pyro_dims, s._pyro_sample_dims
    ([[1], [2]], ' a', 'bc')
    """
    if not contract_dims:
        raise ValueError("unflatten: no contracted dims")
    rows = []
    rest = flat_sample
    for size in reversed(contract_shape[1:]):
        rows.append(rest % size)
        rest = rest // size
    rows.append(rest)
    sample = torch.stack(rows[::-1])
    return with_sample_dims(named(sample, SAMPLE_SYMBOL + output_dims), contract_dims)
