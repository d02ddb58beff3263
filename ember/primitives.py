"""The primitives a model is written with: ``sample``, ``param``, ``plate`` and friends.

``sample`` and ``param`` check for an empty handler stack first and then do the plain thing
without building a message; the message machinery costs nothing outside inference.
"""

from __future__ import annotations

import copy
from contextlib import ExitStack, contextmanager
from inspect import isclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.distributions import constraints

from ember.distributions.delta import Delta
from ember.distributions.unit import Unit
from ember.distributions.util import enable_validation as _enable_distribution_validation
from ember.distributions.util import is_validation_enabled as _distribution_validation_enabled
from ember.params.param_store import ParamStoreDict, param_with_module_name
from ember.poutine import _handler_state
from ember.poutine import runtime
from ember.poutine.handlers import lift, mask
from ember.poutine.message import InferDict, new_message
from ember.poutine.plate_messenger import PlateMessenger
from ember.poutine.subsample_messenger import SubsampleMessenger
from ember.distributions.torch_distribution import TorchDistributionMixin
from ember.params._names import _MODULE_NAMESPACE_DIVIDER as _MODULE_NAMESPACE_DIVIDER  # at Pyro's paths too
from ember.poutine import runtime as _runtime
from ember.poutine.runtime import apply_stack, effectful, not_a_distribution
from ember._util import warn_at_caller

__all__ = [
    "barrier",
    "enable_validation",
    "validation_enabled",
    "clear_param_store",
    "deterministic",
    "factor",
    "get_param_store",
    "iarange",
    "irange",
    "module",
    "param",
    "plate",
    "plate_stack",
    "random_module",
    "sample",
    "subsample",
]

# Bound by assignment (see ember.poutine.runtime): CPython 3.11 calls a method of an imported
# name through LOAD_ATTR, of an assigned one through the faster LOAD_METHOD.
_STACK = _handler_state._STACK
_PYRO_PARAM_STORE = _runtime._PYRO_PARAM_STORE



def get_param_store() -> ParamStoreDict:
    """The process-global param store."""
    return _PYRO_PARAM_STORE


def clear_param_store() -> None:
    """Remove every param from the global store."""
    _PYRO_PARAM_STORE.clear()


_param = effectful(_PYRO_PARAM_STORE.get_param, type="param")


def param(
    name: str,
    init_tensor: torch.Tensor | Callable[[], torch.Tensor] | None = None,
    constraint: constraints.Constraint = constraints.real,
    event_dim: int | None = None,
) -> torch.Tensor:
    """Declare (on first use) and return a learnable parameter from the param store.

    :param name: the param's name in the store.
    :param init_tensor: its initial constrained value, or a callable producing it; ignored
        once the name exists.
    :param constraint: the constraint the value satisfies.
    :param event_dim: the number of rightmost dims that are not batch dims (lets enclosing
        subsampled plates slice the param).

    >>> import ember, torch
    >>> ember.clear_param_store()
    >>> ember.param("s", torch.tensor(1.0), constraint=constraints.positive)
    tensor(1., grad_fn=<...>)
    """
    if not _STACK.get():
        return _PYRO_PARAM_STORE.get_param(name, init_tensor, constraint, event_dim)
    args = (name,) if init_tensor is None else (name, init_tensor)
    new = name not in _PYRO_PARAM_STORE
    try:
        value: torch.Tensor = _param(*args, constraint=constraint, event_dim=event_dim, name=name)
    except BaseException:
        # A param created by a call that then failed (a handler rejected its shape, say)
        # must not stay behind: the next run would silently start from it.
        if new and name in _PYRO_PARAM_STORE:
            _PYRO_PARAM_STORE._discard(name)
        raise
    return value


def sample(
    name: str,
    fn: TorchDistributionMixin | torch.distributions.Distribution,
    *args: Any,
    obs: Any = None,
    obs_mask: torch.Tensor | None = None,
    infer: InferDict | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Draw (or observe) a random variable named ``name`` from the distribution ``fn``.

    The result is typed as the tensor a distribution draws. A custom messenger may still
    put any object into ``msg["value"]`` (Pyro allows it, e.g. a lazy-evaluation handler);
    ``sample`` then returns that object unchanged, and the program that installs such a
    messenger annotates its own values. For the same reason ``fn`` is checked only where
    the value is computed: with handlers installed a non-distribution goes through the
    stack, and the ``TypeError`` comes only if no handler supplied the value.

    :param name: the site name, unique within one run.
    :param fn: the distribution.
    :param obs: an observed value; the site is then conditioned on it.
    :param obs_mask: a bool tensor: observe ``obs`` where true and sample where false.
    :param infer: per-site inference options.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.sample("x", dist.Normal(0.0, 1.0)).shape
    torch.Size([])
    """
    if not isinstance(name, str):
        raise ValueError(f"sample site names must be strings, got {name!r} for {fn!r}")
    if obs_mask is not None:
        return _masked_observe(name, fn, obs, obs_mask, *args, **kwargs)
    if infer is None:
        infer = {}
        is_observed = obs is not None
    else:
        infer = infer.copy()
        is_observed = infer.pop("is_observed", obs is not None)
    if not _STACK.get():
        if obs is not None and not infer.get("_deterministic"):
            warn_at_caller("trying to observe a value outside of inference at " + name, RuntimeWarning)
            observed: torch.Tensor = obs
            return observed
        if not callable(fn):
            raise not_a_distribution(name, fn)
        value: torch.Tensor = fn(*args, **kwargs)
        return value
    msg = new_message("sample", name, fn, args, kwargs, value=obs, is_observed=is_observed, infer=infer)
    apply_stack(msg)
    value = msg["value"]
    if value is None:
        # AssertionError is the type Pyro raises here.
        raise AssertionError(
            f"sample site '{name}' has no value after the handlers ran: a handler set it to None "
            "after the site was already done (e.g. condition(data={name: None}) outside replay)"
        )
    return value


def _masked_observe(name: str, fn: Any, obs: Any, obs_mask: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    observed_mask, unobserved_mask = mask(mask=obs_mask), mask(mask=~obs_mask)
    # The shape check below raises Pyro's error for a bad obs_mask, so the masks skip theirs.
    observed_mask._check_shape = unobserved_mask._check_shape = False
    with observed_mask:
        observed = sample(f"{name}_observed", fn, *args, obs=obs, **kwargs)
    with unobserved_mask:
        unobserved = sample(f"{name}_unobserved", fn, *args, **kwargs)
    event_dim: int = fn.event_dim
    batch_mask = obs_mask.reshape(obs_mask.shape + (1,) * event_dim)
    try:
        value = torch.where(batch_mask, observed, unobserved)
    except RuntimeError as e:
        if "must match the size of tensor" not in str(e):
            raise
        shape = torch.broadcast_shapes(observed.shape, unobserved.shape)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        batch_shape = shape[: len(shape) - event_dim]
        raise ValueError(
            f"Invalid obs_mask shape {tuple(obs_mask.shape)}; should be broadcastable to "
            f"batch_shape = {tuple(batch_shape)} at site '{name}'"
        ) from e
    return deterministic(name, value, event_dim=event_dim)


def factor(name: str, log_factor: torch.Tensor, *, has_rsample: bool | None = None) -> None:
    """Add ``log_factor`` to the log density, as an observed auxiliary site ``name``.

    :param has_rsample: whether ``log_factor`` is differentiable (required in guides).
    """
    unit = Unit(log_factor, has_rsample=has_rsample)
    sample(name, unit, obs=unit.sample(), infer={"is_auxiliary": True})


def deterministic(name: str, value: torch.Tensor, event_dim: int | None = None) -> torch.Tensor:
    """Record ``value`` in traces as site ``name``, contributing nothing to the log density.

    :param event_dim: how many rightmost dims are event dims (default: all).
    """
    event_dim = value.ndim if event_dim is None else event_dim
    result: torch.Tensor = sample(
        name,
        Delta(value, event_dim=event_dim).mask(False),
        obs=value,
        infer={"_deterministic": True},
    )
    return result


@effectful(type="subsample")
def subsample(data: torch.Tensor, event_dim: int) -> torch.Tensor:
    """Slice ``data`` by the subsample indices of the enclosing plates.

    :param event_dim: how many rightmost dims of ``data`` are not batch dims.
    """
    assert isinstance(event_dim, int) and event_dim >= 0
    return data


class plate(PlateMessenger):
    """A vectorized (``with``) or sequential (``for``) independence context, with subsampling.

    :param name: the plate name, unique among enclosing plates.
    :param size: the full size.
    :param subsample_size: draw this many random indices per run.
    :param subsample: use these indices.
    :param dim: a negative dim, or ``None`` for the rightmost free one.
    :param use_cuda: deprecated; use ``device``.
    :param device: where the indices live.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with ember.plate("data", 3):
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    >>> x.shape
    torch.Size([3])
    """


class iarange(plate):
    """Deprecated name of :class:`plate`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warn_at_caller("pyro.iarange is deprecated; use pyro.plate instead", DeprecationWarning)
        super().__init__(*args, **kwargs)


class irange(SubsampleMessenger):
    """Deprecated: a sequential :class:`plate`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warn_at_caller("pyro.irange is deprecated; use pyro.plate instead", DeprecationWarning)
        super().__init__(*args, **kwargs)


@contextmanager
def plate_stack(prefix: str, sizes: Sequence[int], rightmost_dim: int = -1) -> Iterator[None]:
    """Nested plates ``{prefix}_0`` (rightmost, size ``sizes[-1]``), ``{prefix}_1``, ...

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with plate_stack("ps", (2, 3)):
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    >>> x.shape
    torch.Size([2, 3])
    """
    assert rightmost_dim < 0
    with ExitStack() as stack:
        for i, size in enumerate(reversed(sizes)):
            stack.enter_context(plate(f"{prefix}_{i}", size, dim=rightmost_dim - i))
        yield


def module(name: str, nn_module: torch.nn.Module, update_module_params: bool = False) -> torch.nn.Module:
    """Register the trainable parameters of ``nn_module`` as params ``{name}$$${param}``.

    :param update_module_params: put the store's tensors back into the module.
    """
    assert hasattr(nn_module, "parameters"), "module has no parameters"
    assert _MODULE_NAMESPACE_DIVIDER not in name, f"improper module name, since contains {_MODULE_NAMESPACE_DIVIDER}"
    if isclass(nn_module):
        raise NotImplementedError("pyro.module does not support class constructors for the argument nn_module")
    replaced: dict[str, torch.Tensor] = {}
    for param_name, param_value in nn_module.named_parameters():
        if param_value.requires_grad:
            returned = param(param_with_module_name(name, param_name), param_value)
            if param_value is not returned:
                replaced[param_name] = returned
        elif nn_module.training:
            warn_at_caller(
                f"{param_name} was not registered in the param store because requires_grad=False. "
                "You can silence this warning by calling my_module.train(False)"
            )
    if replaced and update_module_params:
        for full_name, value in replaced.items():
            owner_path, _, attr = full_name.rpartition(".")
            owner = nn_module.get_submodule(owner_path) if owner_path else nn_module
            owner._parameters[attr] = value  # type: ignore[assignment]  # store values are constrained views, as in Pyro
    return nn_module


def random_module(name: str, nn_module: torch.nn.Module, prior: Any, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """Deprecated: a function that samples ``nn_module``'s parameters from ``prior``."""
    warn_at_caller(
        "The `random_module` primitive is deprecated, and will be removed in a future release. "
        "Use `pyro.nn.Module` to create Bayesian modules from `torch.nn.Module` instances.",
        FutureWarning,
    )
    assert hasattr(nn_module, "parameters"), "Module is not a NN module."
    lifted = lift(module, prior=prior)

    def sample_module() -> Any:
        return lifted(name, copy.deepcopy(nn_module), True, *args, **kwargs)

    return sample_module


@effectful(type="barrier")
def barrier(data: torch.Tensor) -> torch.Tensor:
    """An identity that marks a point where lazy values must be made concrete."""
    return data


def enable_validation(is_validate: bool = True) -> None:
    """Turn validation on or off in distributions, inference and poutine together."""
    _enable_distribution_validation(is_validate)
    runtime.set_validation(poutine=is_validate, infer=is_validate)


@contextmanager
def validation_enabled(is_validate: bool = True) -> Iterator[None]:
    """Validation switched on (or off) inside, restored on exit."""
    saved = (
        _distribution_validation_enabled(),
        runtime.is_validation_enabled(),
        runtime.is_infer_validation_enabled(),
    )
    try:
        enable_validation(is_validate)
        yield
    finally:
        _enable_distribution_validation(saved[0])
        runtime.set_validation(poutine=saved[1], infer=saved[2])
