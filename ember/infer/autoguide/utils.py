"""Helpers shared by the autoguides: nested attributes, support errors, tensor tiling, and the
small transform utilities (log densities of point masses, a Cholesky affine map, a Hessian)."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import torch
from torch.distributions import constraints
from torch.distributions.transforms import ComposeTransform, Transform, _InverseTransform

from ember.nn.module import PyroModule
from ember.poutine.handlers import trace
from ember.poutine.util import site_is_subsample

__all__ = ["deep_getattr", "deep_setattr", "helpful_support_errors", "mean_field_entropy"]


def _product(shape: Iterable[int]) -> int:
    """The number of elements of a tensor of the given shape."""
    result = 1
    for size in shape:
        result *= size
    return result


def deep_setattr(obj: torch.nn.Module, key: str, val: Any) -> None:
    """Set the dotted attribute ``key`` of ``obj``, creating missing parents as :class:`PyroModule` s.

    :param obj: the root module.
    :param key: a dotted path such as ``"locs.layer.weight"``.
    :param val: the value to set at the end of the path.

    >>> root = PyroModule("root")
    >>> deep_setattr(root, "a.b", torch.nn.Parameter(torch.zeros(1)))
    >>> type(root.a).__name__, root.a.b.shape
    ('PyroModule', torch.Size([1]))
    """

    def child(parent: Any, attr: str) -> Any:
        found = getattr(parent, attr, None)
        if found is not None:
            return found
        setattr(parent, attr, PyroModule())
        return getattr(parent, attr)

    head, _, last = key.rpartition(".")
    owner: Any = functools.reduce(child, head.split("."), obj) if head else obj
    setattr(owner, last, val)


def deep_getattr(obj: Any, key: str) -> Any:
    """Read the dotted attribute ``key`` of ``obj`` (``operator.attrgetter(key)(obj)``)."""
    for attr in key.split("."):
        obj = getattr(obj, attr)
    return obj


def mean_field_entropy(model: Callable[..., Any], args: tuple[Any, ...], whitelist: Iterable[str] | None = None) -> Any:
    """The entropy of ``model``'s latent sites, summed as if they were independent.

    :param model: the model, run once with ``args``.
    :param args: the model's positional arguments.
    :param whitelist: only these sites (default: every non-subsample sample site).
    """
    allowed = None if whitelist is None else set(whitelist)
    tr = trace(model).get_trace(*args)
    entropy: Any = 0.0
    for name, site in tr.nodes.items():
        if site["type"] == "sample" and not site_is_subsample(site):
            if allowed is None or name in allowed:
                fn: Any = site["fn"]
                entropy = entropy + fn.entropy()
    return entropy


@contextmanager
def helpful_support_errors(site: Any) -> Iterator[None]:
    """Turn the ``NotImplementedError`` of a missing bijection into advice naming the site.

    :param site: a message, or any mapping with ``"name"`` and ``"fn"``.
    """
    try:
        yield
    except NotImplementedError as error:
        name = site["name"]
        support = site["fn"].support
        if support.is_discrete:
            raise ValueError(
                f"Continuous inference cannot handle discrete sample site '{name}'. "
                "Consider enumerating that variable as documented in "
                "https://pyro.ai/examples/enumeration.html . "
                "If you are already enumerating, take care to hide this site when "
                "constructing an autoguide, e.g. "
                f"guide = AutoNormal(poutine.block(model, hide=['{name}']))."
            ) from None
        if "sphere" in repr(support).lower():
            raise ValueError(
                f"Continuous inference cannot handle spherical sample site '{name}'. "
                "Consider using ProjectedNormal distribution together with "
                "a reparameterizer, e.g. "
                f"poutine.reparam(config={{'{name}': ProjectedNormalReparam()}})."
            ) from None
        raise error from None


def _check_init_scale(init_scale: object) -> float:
    if not isinstance(init_scale, float) or not init_scale > 0:
        raise ValueError(f"Expected init_scale > 0. but got {init_scale}")
    return init_scale


def _is_identity(transform: Transform) -> bool:
    return isinstance(transform, ComposeTransform) and not transform.parts


def _log_density(transform: Any, plain_inverse: bool, value: torch.Tensor, unconstrained: torch.Tensor) -> torch.Tensor:
    """``transform.inv.log_abs_det_jacobian(value, unconstrained)``, the density a point mass at
    ``value`` carries. For a plain (non-composed) inverse that is exactly minus the forward
    Jacobian, computed without building the inverse transform on every call."""
    if plain_inverse:
        forward: torch.Tensor = transform.log_abs_det_jacobian(unconstrained, value)
        return -forward
    inverse: torch.Tensor = transform.inv.log_abs_det_jacobian(value, unconstrained)
    return inverse


def _has_plain_inverse(transform: Transform) -> bool:
    return isinstance(transform.inv, _InverseTransform)


def periodic_repeat(tensor: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Tile ``tensor`` along ``dim`` until that dim has length ``size``.

    :param tensor: the period to repeat.
    :param size: the length wanted along ``dim``.
    :param dim: the dim to tile.

    >>> periodic_repeat(torch.tensor([1, 2, 3]), 5, 0)
    tensor([1, 2, 3, 1, 2])
    """
    assert isinstance(size, int) and size >= 0
    if dim >= 0:
        dim -= tensor.dim()
    period = tensor.size(dim)
    repeats = [1] * tensor.dim()
    repeats[dim] = -(-size // period)
    result = tensor.repeat(*repeats)
    return result[(Ellipsis, slice(None, size)) + (slice(None),) * (-1 - dim)]


def eye_like(value: torch.Tensor, m: int, n: int | None = None) -> torch.Tensor:
    """An ``m`` by ``n`` (default ``m``) identity matrix with ``value``'s dtype and device."""
    return torch.eye(m, m if n is None else n, dtype=value.dtype, device=value.device)


def _hessian(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The Hessian of the scalar ``y`` with respect to the vector ``x``, row by row."""
    (grad,) = torch.autograd.grad(y, [x], create_graph=True)
    rows = [torch.autograd.grad(g, [x], retain_graph=True)[0] for g in grad.reshape(-1)]
    return torch.stack(rows).reshape(x.shape + x.shape)
