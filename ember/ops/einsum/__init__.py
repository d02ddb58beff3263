"""Einsum with opt_einsum's contraction paths, cached, over semiring backends.

``backend`` names a module with ``einsum``, ``tensordot`` and ``transpose``:

- ``"torch"``: ordinary sum-product;
- ``"ember.ops.einsum.torch_log"``: log-sum-product-exp;
- ``"ember.ops.einsum.torch_map"``: max-product, backward pass = argmax;
- ``"ember.ops.einsum.torch_sample"``: log-sum-product-exp, backward pass = posterior sample;
- ``"ember.ops.einsum.torch_marginal"``: log-sum-product-exp, backward pass = marginals.

Pyro's names (``"pyro.ops.einsum.torch_log"`` and so on) mean the same backends, so code
ported from Pyro runs unchanged.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import opt_einsum
import torch
from torch.jit._trace import TracerWarning

from ember.ops.einsum import torch_log, torch_map, torch_marginal, torch_sample

__all__ = ["BACKENDS", "contract", "contract_expression", "einsum", "resolve_backend"]

_EMBER_BACKENDS = {
    "ember.ops.einsum.torch_log": torch_log.einsum,
    "ember.ops.einsum.torch_map": torch_map.einsum,
    "ember.ops.einsum.torch_sample": torch_sample.einsum,
    "ember.ops.einsum.torch_marginal": torch_marginal.einsum,
}

#: Each accepted backend name and the module it runs (Pyro's names map to Ember's modules).
BACKENDS: dict[str, str] = {
    "torch": "torch",
    **{name: name for name in _EMBER_BACKENDS},
    **{name.replace("ember.", "pyro.", 1): name for name in _EMBER_BACKENDS},
}

_PATH_CACHE: dict[Any, Any] = {}


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
        expr = _PATH_CACHE[key] = opt_einsum.contract_expression(equation, *shapes, **kwargs)
    return expr


def _run_path(expr: Any, operands: tuple[torch.Tensor, ...], fn: Callable[..., torch.Tensor]) -> torch.Tensor:
    # Walking opt_einsum's pairwise contraction list here, straight into the backend's einsum,
    # skips its per-step dispatch, tensordot rewriting and transposes: a large share of the
    # cost of contracting many small enumeration factors.
    pending = list(operands)
    for step in expr.contraction_list:
        positions, einsum_str = step[0], step[2]
        pending.append(fn(einsum_str, *[pending.pop(i) for i in positions]))
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
    shapes = tuple(tuple(t.shape) for t in operands)
    if torch._C._get_tracing_state():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=TracerWarning)
            expr = contract_expression(equation, *shapes, **kwargs)
            return expr(*operands, backend=backend, out=out)  # type: ignore[no-any-return]  # opt_einsum is untyped
    expr = contract_expression(equation, *shapes, **kwargs)
    fn = _EMBER_BACKENDS.get(backend)
    if fn is not None and out is None and not opt_einsum.sharing.currently_sharing():
        return _run_path(expr, operands, fn)
    return expr(*operands, backend=backend, out=out)  # type: ignore[no-any-return]  # opt_einsum is untyped


def einsum(equation: str, *operands: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """The same as :func:`contract` (``torch.einsum``-style name).

    >>> einsum("ab->b", torch.ones(2, 3))
    tensor([2., 2., 2.])
    """
    return contract(equation, *operands, **kwargs)
