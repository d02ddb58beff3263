"""Plated sum-product: contracting factor graphs whose factors live in nested plates.

Factors are packed tensors grouped into a *tensor tree*: a dict from ordinal (the frozenset of
plate dims a factor lives in) to the factors there. Sum dims (enumerated variables) are summed
out, plate dims are product-reduced, by tensor variable elimination (Obermeyer et al., 2019):
the deepest plate context is contracted first, its sum dims eliminated, its remaining plate
dims product-reduced, and the result handed to the parent context. This is polynomial whenever
the plates a sum dim depends on form a tree; otherwise ``NotImplementedError`` says so.

:func:`contract_tensor_tree` and :func:`contract_to_tensor` work on tensor trees (what
enumeration builds from a trace); :func:`einsum` is the same algorithm behind an equation with
``plates`` and multiple outputs, and :func:`naive_ubersum` its brute-force reference.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any, Iterable, Mapping, Sequence

import opt_einsum
import torch

from ember.ops._dims import dims_of, named
from ember.ops.einsum import contract, resolve_backend
from ember.ops.rings import BACKEND_TO_RING, LogRing, Ring

__all__ = ["contract_tensor_tree", "contract_to_tensor", "einsum", "naive_ubersum", "ubersum"]

Ordinal = frozenset[Any]
TensorTree = Mapping[Ordinal, list[torch.Tensor]]


def _plate_names(ordinal: Iterable[Any]) -> str:
    return ", ".join(sorted(getattr(f, "name", str(f)) for f in ordinal))


def _check_plates_are_sensible(output_dims: set[str], nonoutput_ordinal: Ordinal) -> None:
    if output_dims and nonoutput_ordinal:
        raise ValueError(
            "It is nonsensical to preserve a plated dim without preserving all of that dim's "
            f"plates, but found '{''.join(sorted(output_dims))}' without '{_plate_names(nonoutput_ordinal)}'"
        )


def _check_tree_structure(parent: Ordinal, leaf: Ordinal) -> None:
    if parent == leaf:
        raise NotImplementedError(
            "Expected tree-structured plate nesting, but found dependencies on independent "
            f"plates [{_plate_names(leaf)}]. Try converting one of the vectorized plates to a "
            "sequential plate (but beware exponential cost in the size of the sequence)"
        )


def _partition_terms(terms: Sequence[torch.Tensor], dims: set[str]) -> list[tuple[list[torch.Tensor], set[str]]]:
    """Split ``terms`` into groups connected through shared ``dims`` (each group with its dims)."""
    # Union-find over dims; each term joins the dims it has.
    parent: dict[str, str] = {}

    def find(d: str) -> str:
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    term_dims = []
    for term in terms:
        own = [d for d in dims_of(term) if d in dims]
        term_dims.append(own)
        for d in own:
            parent.setdefault(d, d)
        for a, b in zip(own, own[1:]):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[rb] = ra
    groups: dict[Any, tuple[list[torch.Tensor], set[str]]] = {}
    for i, (term, own) in enumerate(zip(terms, term_dims)):
        key: Any = find(own[0]) if own else ("lonely", i)
        group = groups.setdefault(key, ([], set()))
        group[0].append(term)
        group[1].update(own)
    return list(groups.values())


def _contract_component(
    ring: Ring, tensor_tree: dict[Ordinal, list[torch.Tensor]], sum_dims: set[str], target_dims: set[str]
) -> tuple[Ordinal, torch.Tensor]:
    """Contract one connected component down to a single term; consumes ``tensor_tree``."""
    # Each sum dim lives in the intersection of the plate contexts of the terms that have it.
    dims_tree: dict[Ordinal, set[str]] = {}
    if len(tensor_tree) == 1:
        # One plate context (the common case): every sum dim lives there.
        dims_tree[next(iter(tensor_tree))] = set(sum_dims)
    else:
        dim_to_ordinal: dict[str, Ordinal] = {}
        for ordinal, terms in tensor_tree.items():
            for term in terms:
                for d in sum_dims.intersection(dims_of(term)):
                    dim_to_ordinal[d] = dim_to_ordinal.get(d, ordinal) & ordinal
        for d, ordinal in dim_to_ordinal.items():
            dims_tree.setdefault(ordinal, set()).add(d)

    local_terms: list[torch.Tensor] = []
    local_dims = set(target_dims)
    local_ordinal: Ordinal = frozenset()
    min_ordinal: Ordinal = frozenset.intersection(*tensor_tree)
    while any(dims_tree.values()):
        leaf = max(tensor_tree, key=len)  # a deepest plate context (first one on ties)
        leaf_terms = tensor_tree.pop(leaf)
        leaf_dims = dims_tree.pop(leaf, set())
        # A component in one plate context is connected already: no need to split it again.
        groups = [(leaf_terms, leaf_dims)] if not tensor_tree and leaf_dims == sum_dims else _partition_terms(leaf_terms, leaf_dims)
        for terms, dims in groups:
            term = ring.sumproduct(terms, dims - local_dims)
            parent = leaf
            if leaf != min_ordinal:
                pending = sum_dims.intersection(dims_of(term))
                above = [o for o, ds in dims_tree.items() if ds & pending]
                parent = frozenset().union(*above) if above else min_ordinal
                _check_tree_structure(parent, leaf)
                frames = leaf - parent
                kept = dims & local_dims
                if kept:
                    term, local_term = ring.global_local(term, kept, frames)
                    local_terms.append(local_term)
                    local_dims |= sum_dims.intersection(dims_of(local_term))
                    local_ordinal |= leaf
                else:
                    term = ring.product(term, frames)
            tensor_tree.setdefault(parent, []).append(term)

    # What is left has no sum dims: reduce every context to the root one.
    while len(tensor_tree) > 1:
        leaf = max(tensor_tree, key=len)
        for term in tensor_tree.pop(leaf):
            tensor_tree.setdefault(min_ordinal, []).append(ring.product(term, leaf - min_ordinal))
    ((ordinal, terms),) = tensor_tree.items()
    term = terms[0] if len(terms) == 1 else ring.sumproduct(terms, set())

    if local_terms:
        local_terms.append(term)
        term = ring.sumproduct(local_terms, local_dims - target_dims)
        ordinal = ordinal | local_ordinal
    return ordinal, term


def _components(tensor_tree: TensorTree, sum_dims: set[str]) -> Iterable[tuple[dict[Ordinal, list[torch.Tensor]], set[str]]]:
    if len(tensor_tree) == 1:
        ((ordinal, all_terms),) = tensor_tree.items()
        for terms, dims in _partition_terms(all_terms, sum_dims):
            yield {ordinal: list(terms)}, dims
        return
    ordinal_of = {id(term): ordinal for ordinal, terms in tensor_tree.items() for term in terms}
    all_terms = [term for terms in tensor_tree.values() for term in terms]
    for terms, dims in _partition_terms(all_terms, sum_dims):
        component: dict[Ordinal, list[torch.Tensor]] = {}
        for term in terms:
            component.setdefault(ordinal_of[id(term)], []).append(term)
        yield component, dims


def contract_tensor_tree(
    tensor_tree: TensorTree, sum_dims: set[str], cache: dict[Any, Any] | None = None, ring: Ring | None = None
) -> dict[Ordinal, list[torch.Tensor]]:
    """Sum out ``sum_dims`` from a tensor tree, keeping each connected part in its own plates.

    Each group of terms linked by sum dims becomes one term, in the smallest plate context
    that still holds it; the input tree is not changed.

    :param tensor_tree: a dict from ordinal to packed terms.
    :param sum_dims: every sum dim (other dims of the terms are plate dims).
    :param cache: an optional memo for the default ring.
    :param ring: the ring to contract in (default :class:`~ember.ops.rings.LogRing`).
    :returns: a dict from ordinal to contracted terms.

    >>> x, y = named(torch.zeros(2), "a"), named(torch.zeros(3, 2), "ia")
    >>> tree = contract_tensor_tree({frozenset(): [x], frozenset("i"): [y]}, {"a"})
    >>> [(sorted(o), t._pyro_dims) for o, ts in tree.items() for t in ts]
    [([], '')]
    """
    ring = LogRing(cache) if ring is None else ring
    result: dict[Ordinal, list[torch.Tensor]] = {}
    for component, dims in _components(tensor_tree, set(sum_dims)):
        ordinal, term = _contract_component(ring, component, dims, set())
        result.setdefault(ordinal, []).append(term)
    return result


def contract_to_tensor(
    tensor_tree: TensorTree,
    sum_dims: set[str],
    target_ordinal: Ordinal | None = None,
    target_dims: set[str] | None = None,
    cache: dict[Any, Any] | None = None,
    ring: Ring | None = None,
) -> torch.Tensor:
    """Contract a tensor tree to one term in the plates ``target_ordinal``, keeping ``target_dims``.

    If ``target_dims`` is given, parts of the tree not connected to them are dropped (they only
    scale the result).

    :param tensor_tree: a dict from ordinal to packed terms.
    :param sum_dims: every sum dim.
    :param target_ordinal: the plates of the result (default: none).
    :param target_dims: the sum dims the result keeps (a subset of ``sum_dims``).
    :param cache: an optional memo for the default ring.
    :param ring: the ring to contract in (default :class:`~ember.ops.rings.LogRing`).
    :raises ValueError: if a kept dim lives in plates that the result drops.
    :raises NotImplementedError: for plate structure that is not a tree.

    >>> y = named(torch.zeros(3, 2), "ia")
    >>> contract_to_tensor({frozenset("i"): [y]}, {"a"})
    tensor(2.0794)
    """
    target_ordinal = frozenset() if target_ordinal is None else target_ordinal
    target_dims = set() if target_dims is None else set(target_dims)
    sum_dims = set(sum_dims)
    if not target_dims <= sum_dims:
        raise ValueError(f"target_dims {sorted(target_dims)} must be a subset of sum_dims {sorted(sum_dims)}")
    ring = LogRing(cache) if ring is None else ring
    terms = []
    for component, dims in _components(tensor_tree, sum_dims):
        if target_dims and dims.isdisjoint(target_dims):
            continue
        ordinal, term = _contract_component(ring, component, dims, target_dims & dims)
        _check_plates_are_sensible(target_dims.intersection(dims_of(term)), ordinal - target_ordinal)
        frames = ordinal - target_ordinal
        if frames:
            term = ring.product(term, frames)
        terms.append(term)
    term = terms[0] if len(terms) == 1 else ring.sumproduct(terms, set())
    return ring.broadcast(term, target_ordinal)


def einsum(equation: str, *operands: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, ...]:
    """Plated einsum with several outputs: tensor variable elimination behind an equation.

    Symbols in ``plates`` are plate dims: reducing them multiplies (in the ring) instead of
    summing, and a sum dim that appears only together with a plate dim stands for a separate
    variable per plate slice. Outputs are comma-separated and share intermediate results; an
    output that keeps a plated sum dim must keep all of that dim's plates.

    :param equation: e.g. ``"ab,ai,bi->,b"``.
    :param operands: the tensors (their ``_pyro_dims`` are set from the equation).
    :param kwargs: ``plates`` (a string of plate symbols), ``backend`` (default ``"torch"``),
        ``cache`` (a :func:`opt_einsum.shared_intermediates` cache) and ``modulo_total``
        (allow an arbitrary scale per output plate, required for plated outputs).
    :returns: one tensor per output.
    :raises ValueError: if sizes disagree or an output keeps a plated dim without its plates.
    :raises NotImplementedError: if the contraction would cost exponential time, or for an
        unknown backend.

    >>> x = torch.ones(3, 2)
    >>> einsum("ia->", x, plates="i")
    (tensor(8.),)
    """
    cache = kwargs.pop("cache", None)
    plates = frozenset(kwargs.pop("plates", ""))
    backend = kwargs.pop("backend", "torch")
    modulo_total = kwargs.pop("modulo_total", False)
    ring_type = BACKEND_TO_RING.get(backend)
    if ring_type is None:
        raise NotImplementedError(
            "\n".join(["Only the following pyro backends are currently implemented:", *BACKEND_TO_RING])
        )
    if "." in equation:
        raise NotImplementedError("ubersum does not yet support ellipsis notation")
    input_part, output_part = equation.split("->")
    inputs = input_part.split(",")
    outputs = output_part.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {equation!r} has {len(inputs)} inputs but got {len(operands)} operands")
    if not modulo_total and any(outputs):
        raise NotImplementedError(
            "Try setting modulo_total=True and ensuring that your use case "
            "allows an arbitrary scale factor on each result plate."
        )
    if len({id(x) for x in operands}) != len(operands):
        operands = tuple(x[...] for x in operands)  # distinct objects: each carries its own names
    dim_to_size = _dim_sizes(inputs, operands)

    tensor_tree: dict[Ordinal, list[torch.Tensor]] = {}
    for names, term in zip(inputs, operands):
        if len(names) != term.dim():
            raise ValueError(f"einsum: input {names!r} does not match an operand of shape {tuple(term.shape)}")
        tensor_tree.setdefault(plates.intersection(names), []).append(named(term, names))

    results = []
    with opt_einsum.shared_intermediates(cache) as shared:
        ring = ring_type(shared, dim_to_size=dim_to_size)
        for output in outputs:
            sum_dims = set(output).union(*inputs) - plates
            term = contract_to_tensor(
                tensor_tree,
                sum_dims,
                target_ordinal=plates.intersection(output),
                target_dims=sum_dims.intersection(output),
                ring=ring,
            )
            if dims_of(term) != output:
                term = named(term.permute(tuple(map(dims_of(term).index, output))), output)
            results.append(term)
    return tuple(results)


def _dim_sizes(inputs: Sequence[str], operands: Sequence[torch.Tensor]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for names, term in zip(inputs, operands):
        for d, size in zip(names, map(int, term.shape)):
            old = sizes.setdefault(d, size)
            if old != size:
                raise ValueError(f"Dimension size mismatch at dim '{d}': {size} vs {old}")
    return sizes


def ubersum(equation: str, *operands: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, ...]:
    """Deprecated name of :func:`einsum` (log-space by default; ``batch_dims`` means ``plates``)."""
    warnings.warn("'ubersum' is deprecated, use 'pyro.ops.contract.einsum' instead", DeprecationWarning)
    if "batch_dims" in kwargs:
        warnings.warn("'batch_dims' is deprecated, use 'plates' instead", DeprecationWarning)
        kwargs["plates"] = kwargs.pop("batch_dims")
    kwargs.setdefault("backend", "pyro.ops.einsum.torch_log")
    return einsum(equation, *operands, **kwargs)


def naive_ubersum(equation: str, *operands: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, ...]:
    """Reference :func:`ubersum` by unrolling every plate into separate variables (exponential).

    It never raises ``NotImplementedError`` and agrees with :func:`ubersum` wherever that runs.

    :param equation: as for :func:`einsum`.
    :param operands: the tensors.
    :param kwargs: ``plates`` and ``backend`` (default ``"pyro.ops.einsum.torch_log"``).

    >>> naive_ubersum("ia->", torch.zeros(3, 2), plates="i")
    (tensor(2.0794),)
    """
    input_part, output_part = equation.split("->")
    outputs = output_part.split(",")
    if len(outputs) > 1:
        return tuple(naive_ubersum(input_part + "->" + out, *operands, **kwargs)[0] for out in outputs)
    (output,) = outputs
    inputs = input_part.split(",")
    backend = resolve_backend(kwargs.pop("backend", "pyro.ops.einsum.torch_log"))
    plates = set(kwargs.pop("plates", ""))
    if not plates:
        return (contract(equation, *operands, backend=backend),)
    sizes = _dim_sizes(inputs, operands)

    # A sum dim is one variable per slice of the plates common to every term that has it.
    dim_plates: dict[str, set[str]] = {}
    for names in inputs:
        context = set(names) & plates
        for d in set(names) - plates:
            dim_plates[d] = dim_plates.get(d, context) & context
    for d in set(output) - plates:
        _check_plates_are_sensible({d}, frozenset(dim_plates[d] - set(output)))
    symbols: dict[tuple[str, tuple[int, ...]], str] = {}

    def unrolled(d: str, at: dict[str, int]) -> str:
        key = (d, tuple(at[p] for p in sorted(dim_plates.get(d, ()))))
        if key not in symbols:
            symbols[key] = opt_einsum.get_symbol(len(symbols))
        return symbols[key]

    flat_inputs, flat_operands = [], []
    for names, operand in zip(inputs, operands):
        plate_axes = [(p, names.index(p)) for p in names if p in plates]
        for values in itertools.product(*(range(sizes[p]) for p, _ in plate_axes)):
            at = {p: v for (p, _), v in zip(plate_axes, values)}
            flat_inputs.append("".join(unrolled(d, at) for d in names if d not in plates))
            index = tuple(at[d] if d in plates else slice(None) for d in names)
            flat_operands.append(operand[index])
    flat_input = ",".join(flat_inputs)

    out_plates = [p for p in output if p in plates]
    result = torch.empty(tuple(sizes[d] for d in output), dtype=operands[0].dtype, device=operands[0].device)
    for values in itertools.product(*(range(sizes[p]) for p in out_plates)):
        at = dict(zip(out_plates, values))
        flat_output = "".join(unrolled(d, at) for d in output if d not in plates)
        value = contract(flat_input + "->" + flat_output, *flat_operands, backend=backend)
        if not out_plates:
            return (value,)
        # The output's plate dims sit among its sum dims: select them by position.
        index = tuple(at[d] if d in plates else slice(None) for d in output)
        result[index] = value
    return (result,)
