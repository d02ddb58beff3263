"""Einsum with opt_einsum's contraction paths, cached, over semiring backends.

``backend`` names a module with ``einsum``, ``tensordot`` and ``transpose``:

- ``"torch"``: ordinary sum-product;
- ``"ember.ops.einsum.torch_log"``: log-sum-product-exp;
- ``"ember.ops.einsum.torch_map"``: max-product, backward pass = argmax;
- ``"ember.ops.einsum.torch_sample"``: log-sum-product-exp, backward pass = posterior sample;
- ``"ember.ops.einsum.torch_marginal"``: log-sum-product-exp, backward pass = marginals.

Pyro's names (``"pyro.ops.einsum.torch_log"`` and so on) mean the same backends, so code
ported from Pyro runs unchanged.

Two shortcuts keep many-factor enumeration cheap: the Ember backends run opt_einsum's
pairwise path directly (no per-step dispatch), and a log-space contraction whose summed dims
form a chain (an HMM) runs as a parallel scan, ``O(log T)`` batched kernels
(:mod:`ember.ops.einsum._chain`), whenever no backward pass (sample, argmax, marginal) is
requested. Paths and plans are cached by equation and shapes.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import opt_einsum
import torch
from torch.jit._trace import TracerWarning

from ember.ops.einsum import torch_log, torch_map, torch_marginal, torch_sample
from ember.ops.einsum._chain import ChainPlan, chain_plan

__all__ = ["BACKENDS", "contract", "contract_expression", "einsum", "resolve_backend"]

_Einsum = Callable[..., torch.Tensor]

# Each backend's einsum for the last step of a contraction and for the steps before it.
_EMBER_BACKENDS: dict[str, tuple[_Einsum, _Einsum]] = {
    "ember.ops.einsum.torch_log": (torch_log.einsum, torch_log.einsum_step),
    "ember.ops.einsum.torch_map": (torch_map.einsum, torch_map.einsum),
    "ember.ops.einsum.torch_sample": (torch_sample.einsum, torch_sample.einsum_step),
    "ember.ops.einsum.torch_marginal": (torch_marginal.einsum, torch_marginal.einsum_step),
}

#: Each accepted backend name and the module it runs (Pyro's names map to Ember's modules).
BACKENDS: dict[str, str] = {
    "torch": "torch",
    **{name: name for name in _EMBER_BACKENDS},
    **{name.replace("ember.", "pyro.", 1): name for name in _EMBER_BACKENDS},
}

_PATH_CACHE: dict[Any, Any] = {}
_MAX_CACHED = 4096

# Log-space backends whose forward pass may take the chain scan when no adjoint is needed.
_CHAIN_BACKENDS = frozenset(["ember.ops.einsum.torch_log", "ember.ops.einsum.torch_sample", "ember.ops.einsum.torch_marginal"])
_CHAIN_PLANS: dict[tuple[str, tuple[tuple[int, ...], ...]], ChainPlan | None] = {}


def _try_chain(equation: str, shapes: tuple[tuple[int, ...], ...], operands: tuple[torch.Tensor, ...]) -> torch.Tensor | None:
    key = (equation, shapes)
    if key in _CHAIN_PLANS:
        plan = _CHAIN_PLANS[key]
    else:
        if len(_CHAIN_PLANS) >= _MAX_CACHED:
            _CHAIN_PLANS.clear()  # a program with ever-new shapes must not grow this forever
        plan = _CHAIN_PLANS[key] = chain_plan(equation, shapes)
    if plan is None or any(hasattr(x, "_pyro_backward") for x in operands):
        return None
    if not opt_einsum.sharing.currently_sharing():
        return plan.run(operands)
    cache = opt_einsum.sharing.get_sharing_cache()
    cache_key = ("ember.chain", equation, *(id(x) for x in operands))
    result: torch.Tensor | None = cache.get(cache_key)
    if result is None:
        for x in operands:
            cache.setdefault(("tensor", id(x)), x)
        result = cache[cache_key] = plan.run(operands)
    return result


def resolve_backend(backend: str) -> str:
    """Ember's module name for ``backend`` (Pyro's ``pyro.ops.einsum.*`` names included).

    >>> resolve_backend("pyro.ops.einsum.torch_log")
    'ember.ops.einsum.torch_log'
    """
    return BACKENDS.get(backend, backend)


def contract_expression(equation: str, *shapes: tuple[int, ...], cache_path: bool = True, **kwargs: Any) -> Any:
    """:func:`opt_einsum.contract_expression`, memoized by equation, shapes and options.

    :param equation: an einsum equation.
    :param shapes: the operands' shapes.
    :param cache_path: whether to reuse (and store) the expression for these arguments.
    :param kwargs: options for :func:`opt_einsum.contract_expression`.

    >>> expr = contract_expression("ab,bc->ac", (2, 3), (3, 4))
    >>> expr(torch.ones(2, 3), torch.ones(3, 4), backend="torch").shape
    torch.Size([2, 4])
    """
    if not cache_path:
        return opt_einsum.contract_expression(equation, *shapes, **kwargs)
    key = (equation, shapes, tuple(kwargs.items()))
    expr = _PATH_CACHE.get(key)
    if expr is None:
        if len(_PATH_CACHE) >= _MAX_CACHED:
            _PATH_CACHE.clear()  # a program with ever-new shapes must not grow this forever
        expr = _PATH_CACHE[key] = opt_einsum.contract_expression(equation, *shapes, **kwargs)
    return expr


def _run_path(expr: Any, operands: tuple[torch.Tensor, ...], backend: str, fns: tuple[_Einsum, _Einsum]) -> torch.Tensor:
    # Walking opt_einsum's pairwise contraction list here, straight into the backend's einsum,
    # skips its per-step dispatch, tensordot rewriting and transposes: a large share of the
    # cost of contracting many small enumeration factors.
    final, step = fns
    pending = list(operands)
    steps = expr.contraction_list
    last = len(steps) - 1
    cache = opt_einsum.sharing.get_sharing_cache() if opt_einsum.sharing.currently_sharing() else None
    for k, (positions, _, einsum_str, *_rest) in enumerate(steps):
        fn = final if k == last else step
        inputs = [pending.pop(i) for i in positions]
        if cache is None:
            pending.append(fn(einsum_str, *inputs))
            continue
        # Inside shared_intermediates, memoize each step by its operands' identities, as
        # opt_einsum's own sharing does; the cache keeps the operands alive so ids stay unique.
        # Whether the step records an adjoint is part of the key: a result computed without
        # one must not be handed to a pass that will run backward through it.
        adjoint = any(hasattr(x, "_pyro_backward") for x in inputs)
        key = ("ember.einsum", backend, einsum_str, k == last, adjoint, *(id(x) for x in inputs))
        result = cache.get(key)
        if result is None:
            for x in inputs:
                cache.setdefault(("tensor", id(x)), x)
            result = cache[key] = fn(einsum_str, *inputs)
        pending.append(result)
    return pending[0]


def contract(equation: str, *operands: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """:func:`opt_einsum.contract` with a cached contraction path and a semiring ``backend``.

    :param equation: an einsum equation.
    :param operands: the tensors.
    :param kwargs: ``backend`` (default ``"torch"``; see this module's docstring), ``out``,
        ``cache_path`` (default ``True``) and options for the path search.

    >>> contract("ab,bc->a", torch.zeros(2, 3), torch.zeros(3, 4), backend="pyro.ops.einsum.torch_log")
    tensor([2.4849, 2.4849])
    """
    backend = resolve_backend(kwargs.pop("backend", "torch"))
    out = kwargs.pop("out", None)
    if not torch._C._get_tracing_state():
        return _contract(equation, operands, backend, out, kwargs)
    with warnings.catch_warnings():
        # Shapes read while tracing become constants, which is what a cached path assumes.
        warnings.filterwarnings("ignore", category=TracerWarning)
        return _contract(equation, operands, backend, out, kwargs)


def _contract(equation: str, operands: tuple[torch.Tensor, ...], backend: str, out: Any, kwargs: dict[str, Any]) -> torch.Tensor:
    shapes = tuple(tuple(t.shape) for t in operands)
    if backend in _CHAIN_BACKENDS and out is None and not kwargs:
        result = _try_chain(equation, shapes, operands)
        if result is not None:
            return result
    expr = contract_expression(equation, *shapes, **kwargs)
    fns = _EMBER_BACKENDS.get(backend)
    if fns is not None and out is None:
        return _run_path(expr, operands, backend, fns)
    return expr(*operands, backend=backend, out=out)  # type: ignore[no-any-return]  # opt_einsum is untyped


def einsum(equation: str, *operands: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """The same as :func:`contract` (``torch.einsum``-style name).

    >>> einsum("ab->b", torch.ones(2, 3))
    tensor([2., 2., 2.])
    """
    return contract(equation, *operands, **kwargs)
