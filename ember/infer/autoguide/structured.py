"""Structured autoguides: per-site conditionals coupled by learned (linear) dependencies.

:class:`AutoStructured` draws each latent site's unconstrained value as
``loc + noise + sum_u dep_u(noise_u)`` over its upstream sites ``u`` (in prior order), so the
guide is a sparse Gaussian (with ``"normal"``/``"mvn"`` conditionals and linear dependencies)
whose coupling follows the model's posterior dependency graph.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from operator import attrgetter
from types import SimpleNamespace
from typing import Any

import torch
from torch.distributions import biject_to

from ember.distributions import Delta, Normal, constraints
from ember.distributions.util import is_identically_zero
from ember.infer.autoguide.guide import AutoGuide, PlatesFn
from ember.infer.autoguide.initialization import InitFn, InitMessenger, init_to_feasible
from ember.infer.autoguide.utils import deep_setattr, eye_like, helpful_support_errors
from ember.infer.inspect import get_dependencies
from ember.nn.module import PyroModule, PyroParam
from ember.poutine.handlers import block, infer_config
from ember.poutine.message import InferDict, Message
from ember.poutine.runtime import get_mask
from ember.primitives import sample

__all__ = ["AutoStructured"]

Conditional = str | Callable[[], torch.Tensor]
Dependency = str | Callable[[torch.Tensor], torch.Tensor]


def _config_auxiliary(msg: Message) -> InferDict:
    return {"is_auxiliary": True}


class AutoStructured(AutoGuide):
    """A guide with a chosen conditional per site and learned dependencies between sites.

    :param model: the model.
    :param conditionals: per site (or one for all) ``"delta"``, ``"normal"`` (diagonal),
        ``"mvn"`` (full covariance) or a callable returning the site's flattened noise.
    :param dependencies: ``{downstream: {upstream: "linear" or callable}}``, or ``"linear"``
        to couple every pair of sites that share a factor of the model (in prior order).
    :param init_loc_fn: the init strategy for the locs.
    :param init_scale: the initial scale of the conditionals.
    :param create_plates: as for :class:`~ember.infer.autoguide.AutoGuide`.
    :raises ValueError: for a nonpositive ``init_scale``, or (on the first call) an unknown
        conditional or dependency type.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     a = ember.sample("a", dist.Normal(0.0, 1.0))
    ...     ember.sample("b", dist.Normal(a, 1.0))
    >>> guide = AutoStructured(model, conditionals={"a": "normal", "b": "delta"})
    >>> sorted(guide()), guide.dependencies
    (['a', 'b'], {'b': {'a': 'linear'}})
    """

    scale_constraint: constraints.Constraint = constraints.softplus_positive
    scale_tril_constraint: constraints.Constraint = constraints.softplus_lower_cholesky

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        conditionals: Conditional | dict[str, Conditional] = "mvn",
        dependencies: str | dict[str, dict[str, Dependency]] = "linear",
        init_loc_fn: InitFn = init_to_feasible,
        init_scale: float = 0.1,
        create_plates: PlatesFn | None = None,
    ) -> None:
        assert isinstance(conditionals, (dict, str))
        if isinstance(conditionals, dict):
            for name, fn in conditionals.items():
                assert isinstance(name, str)
                assert isinstance(fn, str) or callable(fn)
        assert isinstance(dependencies, (dict, str))
        if isinstance(dependencies, dict):
            assert isinstance(conditionals, dict)
            for downstream, deps in dependencies.items():
                assert downstream in conditionals
                assert isinstance(deps, dict)
                for upstream, dep in deps.items():
                    assert upstream in conditionals
                    assert upstream != downstream
                    assert isinstance(dep, str) or callable(dep)
        self.conditionals = conditionals
        self.dependencies = dependencies
        if not isinstance(init_scale, float) or not init_scale > 0:
            raise ValueError(f"Expected init_scale > 0. but got {init_scale}")
        self._init_scale = init_scale
        self._original_model: tuple[Callable[..., Any], ...] | None = (model,)
        super().__init__(InitMessenger(init_loc_fn)(model), create_plates=create_plates)

    def _auto_config(self, sample_sites: dict[str, Message], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not isinstance(self.conditionals, dict):
            self.conditionals = {name: self.conditionals for name in sample_sites}
        if not isinstance(self.dependencies, dict):
            assert self._original_model is not None
            with block():
                meta = get_dependencies(self._original_model[0], args, kwargs)
            prior_order = {name: i for i, name in enumerate(sample_sites)}
            dependencies: dict[str, dict[str, Dependency]] = defaultdict(dict)
            for d, upstreams in meta["posterior_dependencies"].items():
                assert d in sample_sites
                for u in upstreams:
                    if u in sample_sites:
                        if prior_order[u] > prior_order[d]:
                            dependencies[u][d] = self.dependencies
                        elif prior_order[d] > prior_order[u]:
                            dependencies[d][u] = self.dependencies
            self.dependencies = dict(dependencies)
        self._original_model = None

    def _check_types(self) -> None:
        # Before any param exists: a bad configuration leaves nothing in the param store.
        conditionals = self.conditionals if isinstance(self.conditionals, dict) else {"*": self.conditionals}
        for name, conditional in conditionals.items():
            if not callable(conditional) and conditional not in ("delta", "normal", "mvn"):
                where = "" if name == "*" else f" at site '{name}'"
                raise ValueError(f"AutoStructured: unsupported conditional type: {conditional}{where}")
        dependencies = self.dependencies if isinstance(self.dependencies, dict) else {"*": {"*": self.dependencies}}
        for deps in dependencies.values():
            for dep in deps.values():
                if not (dep == "linear" or callable(dep)):
                    raise ValueError(f"Expected either the string 'linear' or a callable, but got {dep}")

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        self._check_types()
        super()._setup_prototype(*args, **kwargs)
        self.locs = PyroModule()
        self.scales = PyroModule()
        self.scale_trils = PyroModule()
        self.conds = PyroModule()
        self.deps = PyroModule()
        self._batch_shapes: dict[str, torch.Size] = {}
        self._unconstrained_event_shapes: dict[str, torch.Size] = {}
        sample_sites = OrderedDict(self._latent_sites())
        self._auto_config(sample_sites, args, kwargs)
        assert isinstance(self.conditionals, dict) and isinstance(self.dependencies, dict)
        init_locs: dict[str, torch.Tensor] = {}
        numel: dict[str, int] = {}
        for name, site in sample_sites.items():
            fn: Any = site["fn"]
            with helpful_support_errors(site):
                init_loc = biject_to(fn.support).inv(site["value"].detach()).detach()
            self._batch_shapes[name] = fn.batch_shape
            self._unconstrained_event_shapes[name] = init_loc.shape[len(fn.batch_shape) :]
            numel[name] = init_loc.numel()
            init_locs[name] = init_loc.reshape(-1)
        children: dict[str, list[str]] = defaultdict(list)
        num_pending: dict[str, int] = {}
        for name in sample_sites:
            init_loc = init_locs[name]
            deep_setattr(self.locs, name, PyroParam(init_loc))
            conditional = self.conditionals[name]
            if callable(conditional):
                deep_setattr(self.conds, name, conditional)
            else:
                if conditional in ("normal", "mvn"):
                    deep_setattr(self.scales, name, PyroParam(torch.full_like(init_loc, self._init_scale), self.scale_constraint))
                if conditional == "mvn":
                    scale_tril = eye_like(init_loc, init_loc.numel())
                    deep_setattr(self.scale_trils, name, PyroParam(scale_tril, self.scale_tril_constraint))
            num_pending[name] = 0
            deps = PyroModule()
            deep_setattr(self.deps, name, deps)
            for upstream, dep in self.dependencies.get(name, {}).items():
                assert upstream in sample_sites
                children[upstream].append(name)
                num_pending[name] += 1
                if isinstance(dep, str) and dep == "linear":
                    linear = torch.nn.Linear(numel[upstream], numel[name], bias=False)
                    linear.weight.data.zero_()
                    dep = linear
                deep_setattr(deps, upstream, dep)
        # Topological order: always the ready site with the smallest name, as Pyro.
        self._sorted_sites: list[tuple[str, dict[str, Any]]] = []
        while num_pending:
            name, count = min(num_pending.items(), key=lambda kv: (kv[1], kv[0]))
            assert count == 0, f"cyclic dependency: {name}"
            del num_pending[name]
            for child in children[name]:
                num_pending[child] -= 1
            site = sample_sites[name]
            fn = site["fn"]
            self._sorted_sites.append(
                (name, {"name": name, "cond_indep_stack": site["cond_indep_stack"], "fn": SimpleNamespace(support=fn.support, event_dim=fn.event_dim)})
            )

    def get_deltas(self, save_params: list[str] | None = None) -> dict[str, Delta]:
        """Point masses at each site's value, carrying the guide's log density (auxiliary sites)."""
        with infer_config(config_fn=_config_auxiliary):
            return self._get_deltas(save_params)

    def _get_deltas(self, save_params: list[str] | None) -> dict[str, Delta]:
        assert isinstance(self.conditionals, dict) and isinstance(self.dependencies, dict)
        deltas: dict[str, Delta] = {}
        aux_values: dict[str, torch.Tensor] = {}
        compute_density = get_mask() is not False
        for name, site in self._sorted_sites:
            if save_params is not None and name not in save_params:
                continue
            log_density: Any = 0.0
            loc: torch.Tensor = attrgetter(name)(self.locs)
            zero = torch.zeros_like(loc)
            conditional = self.conditionals[name]
            if callable(conditional):
                aux_value = attrgetter(name)(self.conds)()
            elif conditional == "delta":
                aux_value = zero
            elif conditional in ("normal", "mvn"):
                aux_value = sample(name + "_aux", Normal(zero, 1).to_event(1), infer={"is_auxiliary": True})
                scale: torch.Tensor = attrgetter(name)(self.scales)
                if conditional == "normal":
                    aux_value = aux_value * scale
                    if compute_density:
                        log_density = (-scale.log()).expand_as(aux_value)
                else:
                    scale_tril: torch.Tensor = attrgetter(name)(self.scale_trils)
                    aux_value = aux_value @ scale_tril.T * scale
                    if compute_density:
                        log_density = (-scale_tril.diagonal(dim1=-2, dim2=-1).log() - scale.log()).expand_as(aux_value)
            else:
                raise ValueError(f"Unsupported conditional type: {conditional}")
            deps = attrgetter(name)(self.deps)
            for upstream in self.dependencies.get(name, {}):
                aux_value = aux_value + attrgetter(upstream)(deps)(aux_values[upstream])
            aux_values[name] = aux_value
            batch_shape = torch.broadcast_shapes(aux_value.shape[:-1], self._batch_shapes[name])  # type: ignore[no-untyped-call]  # torch: unannotated
            unconstrained = (aux_value + loc).reshape(batch_shape + self._unconstrained_event_shapes[name])
            if not is_identically_zero(log_density):
                log_density = log_density.reshape(batch_shape + (-1,)).sum(-1)
            transform = biject_to(site["fn"].support)
            value = transform(unconstrained)
            if compute_density and conditional != "delta":
                assert transform.codomain.event_dim == site["fn"].event_dim
                log_density = log_density + transform.inv.log_abs_det_jacobian(value, unconstrained)
            deltas[name] = Delta(value, log_density, site["fn"].event_dim)
        return deltas

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sample every latent site; the values by site name."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        deltas = self.get_deltas()
        plates = self._create_plates(*args, **kwargs)
        result: dict[str, torch.Tensor] = {}
        for name, site in self._sorted_sites:
            with ExitStack() as stack:
                for frame in site["cond_indep_stack"]:
                    if frame.vectorized:
                        stack.enter_context(plates[frame.name])
                result[name] = sample(name, deltas[name])
        return result

    @torch.no_grad()
    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Each site's value at its loc (the guide's mode when there are no dependencies)."""
        result: dict[str, torch.Tensor] = {}
        for name, site in self._sorted_sites:
            loc = attrgetter(name)(self.locs).detach()
            loc = loc.reshape(self._batch_shapes[name] + self._unconstrained_event_shapes[name])
            result[name] = biject_to(site["fn"].support)(loc)
        return result
