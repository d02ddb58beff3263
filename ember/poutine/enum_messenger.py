"""``enum``: parallel enumeration of discrete sample sites.

Changes step 1 of ``sample`` messages marked ``infer={"enumerate": "parallel"}``: instead of
drawing one value, the messenger sets ``msg["value"]`` to the whole support of the
distribution (or to ``num_samples`` local Monte Carlo draws), laid out along a fresh tensor
dim to the left of every plate, and marks the message ``done``. The dim comes from the
enumeration allocator in :mod:`ember.poutine.runtime`; inside ``markov`` scopes, dims of
sites that have gone out of scope are reused.

Step 3 records, for every sample site (enumerated or not), which enumeration dims its value
and log density depend on, in ``msg["infer"]["_dim_to_id"]``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from typing_extensions import Self

from ember.distributions.torch_discrete import Categorical
from ember.distributions.torch_distribution import TorchDistributionMixin
from ember.poutine._handler_state import _ENUM_ALLOCATOR
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import is_validation_enabled

__all__ = ["EnumMessenger", "enumerate_site"]

_CATEGORICAL_SUPPORT = "_pyro_categorical_support"
# The values of ``infer["enumerate"]`` Pyro understands (those ``config_enumerate`` accepts).
_STRATEGIES = frozenset({"parallel", "sequential", "flat"})


def _diagonal_ancestors(size: int, num_samples: int, device: torch.device) -> torch.Tensor:
    # Particle i of this site descends from particle i of each upstream population.
    return torch.arange(size, device=device)


def _mixture_ancestors(size: int, num_samples: int, device: torch.device) -> torch.Tensor:
    # Each particle picks its upstream particle uniformly at random.
    uniform = Categorical(logits=torch.zeros((size,), device=device))
    return uniform.sample(torch.Size([num_samples]))


_TMC_STRATEGIES: dict[str, Callable[[int, int, torch.device], torch.Tensor]] = {
    "diagonal": _diagonal_ancestors,
    "mixture": _mixture_ancestors,
}


def _tensor_monte_carlo(msg: Message, fn: TorchDistributionMixin, num_samples: int, strategy: str) -> torch.Tensor:
    """``num_samples`` draws at a site, with a single particle dim however many parents it has.

    A draw from ``fn`` carries every upstream particle dim in its batch shape; each such dim
    (any batch dim that is not a plate) is collapsed by choosing one ancestor per particle.
    """
    choose_ancestors = _TMC_STRATEGIES.get(strategy)
    if choose_ancestors is None:
        raise ValueError(f"{strategy} not a valid TMC strategy")
    batch_shape = fn.batch_shape
    plate_shape = [1] * len(batch_shape)
    for frame in msg["cond_indep_stack"]:
        if frame.dim is not None:
            plate_shape[frame.dim] = frame.size if frame.size > 0 else batch_shape[frame.dim]
    target_shape = (num_samples, *plate_shape, *fn.event_shape)

    draws = fn(torch.Size([num_samples]))
    if draws.shape == target_shape:
        return draws
    # Indexing dim 0 and every collapsed dim with same-length index vectors pairs them up
    # elementwise; torch puts that paired dim first, so the result is (num_samples, ...rest).
    index: list[Any] = [torch.arange(num_samples, device=draws.device)]
    collapsed = []
    for position in range(1, draws.dim()):
        size = draws.shape[position]
        if size > 1 and target_shape[position] == 1:
            index.append(choose_ancestors(size, num_samples, draws.device))
            collapsed.append(position)
        else:
            index.append(slice(None))
    value = draws[tuple(index)]
    for position in collapsed:
        value = value.unsqueeze(position)
    assert value.shape == target_shape, (value.shape, target_shape)
    return value


def enumerate_site(msg: Message) -> torch.Tensor:
    """The values to try at an enumerated site, along a new leftmost dim.

    Without ``infer["num_samples"]`` this is the distribution's support; with it, that many
    local samples: plain draws when ``infer["expand"]`` is true, otherwise Tensor Monte
    Carlo draws whose ancestors are chosen by ``infer["tmc"]`` (``"diagonal"`` or
    ``"mixture"``).

    :param msg: a sample message whose ``fn`` is a :class:`TorchDistributionMixin`.
    """
    fn = msg["fn"]
    assert isinstance(fn, TorchDistributionMixin)
    infer = msg["infer"]
    num_samples = infer.get("num_samples")
    expand = infer.get("expand", False)
    if num_samples is None:
        try:
            value = fn.enumerate_support(expand=expand)
        except NotImplementedError as error:
            reason = f": {error}" if str(error) else ""
            raise NotImplementedError(
                f"At site '{msg['name']}', cannot enumerate {type(fn).__name__} in parallel"
                f"{reason}; only distributions with enumerable support can be enumerated"
            ) from error
    elif num_samples < 2:
        raise ValueError(
            f"At site '{msg['name']}', local parallel sampling needs num_samples >= 2, got {num_samples}"
        )
    elif expand:
        value = fn(torch.Size([num_samples]))
    else:
        value = _tensor_monte_carlo(msg, fn, num_samples, infer.get("tmc", "diagonal"))
    assert value.dim() == 1 + len(fn.batch_shape) + len(fn.event_shape)
    return value


class EnumMessenger(Messenger):
    """Enumerate in parallel the sample sites marked ``infer={"enumerate": "parallel"}``.

    Each such site gets all its values at once, along its own dim to the left of the plates.
    Other handlers run after this one see those values, and log densities computed from them
    carry the same dims.

    :param first_available_dim: the rightmost dim enumeration may use, e.g.
        ``-1 - max_plate_nesting``. ``None`` continues from the dims already handed out by an
        earlier ``enum`` (so a model enumerated after its guide uses dims left of the guide's).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with EnumMessenger(first_available_dim=-1):
    ...     x = ember.sample("x", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})
    >>> x
    tensor([0., 1.])
    """

    _copy_per_call = True  # per-run state: each call of a wrapped function gets a copy

    def __init__(self, first_available_dim: int | None = None) -> None:
        assert first_available_dim is None or first_available_dim < 0, first_available_dim
        super().__init__()
        self.first_available_dim = first_available_dim
        self._markov_depths: dict[str, int] = {}
        self._param_dims: dict[str, dict[int, int]] = {}
        self._value_dims: dict[str, dict[int, int]] = {}

    def __enter__(self) -> Self:
        if self.first_available_dim is not None:
            _ENUM_ALLOCATOR.set_first_available_dim(self.first_available_dim)
        # site name -> markov depth at which it was sampled
        self._markov_depths = {}
        # site name -> {enum dim: id} its distribution may depend on
        self._param_dims = {}
        # site name -> {enum dim: id} present in its value
        self._value_dims = {}
        return super().__enter__()

    def _pyro_sample(self, msg: Message) -> None:
        fn = msg["fn"]
        if msg["done"] or not isinstance(fn, TorchDistributionMixin):
            return
        name = msg["name"] or ""
        infer = msg["infer"]

        # Dims of upstream sites still in scope may appear in this site's distribution, so
        # they cannot be reused here. A site is out of scope once the markov context it was
        # sampled in has exited, which shows up as a depth mismatch.
        scope = infer.get("_markov_scope")
        param_dims = dict(_ENUM_ALLOCATOR.dim_to_id)
        if scope is not None:
            for upstream, depth in scope.items():
                if self._markov_depths.get(upstream) == depth:
                    param_dims.update(self._value_dims.get(upstream, {}))
            self._markov_depths[name] = infer.get("_markov_depth", 0)
        self._param_dims[name] = param_dims
        strategy = infer.get("enumerate")
        if strategy is not None and strategy not in _STRATEGIES and is_validation_enabled():
            # Beyond Pyro, which samples such a site silently instead of enumerating it.
            raise ValueError(
                f"sample site {name!r}: unknown enumeration strategy infer={{'enumerate': {strategy!r}}}; "
                "expected 'parallel', 'sequential', 'flat' or None"
            )
        if msg["is_observed"] or strategy != "parallel":
            return

        value = enumerate_site(msg)
        # The enumerated values run along the leftmost dim of log_prob: move it to a free dim.
        actual_dim = -1 - len(fn.batch_shape)
        target_dim, id_ = _ENUM_ALLOCATOR.allocate(None if scope is None else set(param_dims))
        event_dim = fn.event_dim
        categorical_support = getattr(value, _CATEGORICAL_SUPPORT, None)
        if categorical_support is not None:
            # Keep the mark that lets Categorical.log_prob reshape logits instead of gathering.
            value = value.reshape(value.shape[:1] + (1,) * (-1 - target_dim))
            setattr(value, _CATEGORICAL_SUPPORT, categorical_support)
        elif actual_dim < target_dim:
            assert value.size(target_dim - event_dim) == 1, f"pyro.markov dim conflict at dim {actual_dim}"
            value = value.transpose(target_dim - event_dim, actual_dim - event_dim)
            while value.dim() and value.size(0) == 1:
                value = value.squeeze(0)
        elif target_dim < actual_dim:
            value = value.reshape(value.shape[:1] + (1,) * (actual_dim - target_dim) + value.shape[1:])

        # The enumeration dims a downstream site can inherit through this value.
        value_dims = {
            dim: param_dims[dim]
            for dim in range(event_dim - value.dim(), 0)
            if value.size(dim - event_dim) > 1 and dim in param_dims
        }
        value_dims[target_dim] = id_

        infer["_enumerate_dim"] = target_dim
        infer["_dim_to_id"] = value_dims
        msg["value"] = value
        msg["done"] = True

    def _pyro_post_sample(self, msg: Message) -> None:
        # A site's log density may depend on every dim in _param_dims, while only the dims
        # where its value actually varies are passed on to the sites downstream.
        fn = msg["fn"]
        value = msg["value"]
        if not isinstance(fn, TorchDistributionMixin) or value is None:
            return
        name = msg["name"] or ""
        dim_to_id = msg["infer"].setdefault("_dim_to_id", {})
        dim_to_id.update(self._param_dims.get(name, {}))
        shape = tuple(getattr(value, "shape", ()))
        batch_shape = shape[: len(shape) - fn.event_dim]
        self._value_dims[name] = {
            dim: id_ for dim, id_ in dim_to_id.items() if len(batch_shape) >= -dim and batch_shape[dim] > 1
        }
