"""A Gaussian guide with the model's own conditional-independence structure (dense backend).

:class:`AutoGaussian` gives every factor of the model (each sample site's log density, observed
or not) a learned Gaussian factor over the latents it reads, in unconstrained, whitened
space: ``white_vec`` and ``prec_sqrt`` with precision ``prec_sqrt @ prec_sqrt.T``. Their
product is one joint Gaussian, sampled as the auxiliary site ``"_{name}_latent"`` and then
shifted and scaled per site by ``locs`` and ``scales``. The dense backend assembles the joint
precision matrix in full (cubic in the latent size); Pyro's funsor backend is not available.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from operator import attrgetter
from types import SimpleNamespace
from typing import Any

import torch
from torch.distributions import biject_to

from ember.distributions import Delta, MultivariateNormal, constraints
from ember.infer.autoguide.guide import AutoGuide
from ember.infer.autoguide.initialization import InitFn, InitMessenger, init_to_feasible
from ember.infer.autoguide.utils import deep_setattr, helpful_support_errors
from ember.infer.inspect import get_dependencies, is_sample_site
from ember.nn.module import PyroModule, PyroParam
from ember.ops.tensor_utils import precision_to_scale_tril
from ember.poutine.handlers import block, mask
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.runtime import am_i_wrapped, get_mask
from ember.poutine.util import site_is_subsample
from ember.primitives import sample

__all__ = ["AutoGaussian", "AutoGaussianDense"]

_Plates = frozenset[CondIndepStackFrame]


def _plates_to_shape(plates: _Plates) -> torch.Size:
    shape = [1] * max([0] + [-int(f.dim or 0) for f in plates])
    for f in plates:
        assert f.dim is not None
        shape[f.dim] = f.size
    return torch.Size(shape)


def _break_plates(x: torch.Tensor, all_plates: _Plates, kept_plates: _Plates) -> torch.Tensor:
    """Fold the plates of ``x`` (event dim 1) that are not kept into its event dim."""
    assert x.shape[:-1] == _plates_to_shape(all_plates)
    kept = kept_plates & all_plates
    broken = all_plates - kept
    if not broken:
        return x
    if not kept:
        return x.reshape(-1)
    batch_shape = _plates_to_shape(kept)
    if max(int(p.dim or 0) for p in kept) < min(int(p.dim or 0) for p in broken):
        return x.reshape(batch_shape + (-1,))
    event_dims = {-1} | {int(p.dim or 0) - 1 for p in broken}
    perm = sorted(range(-x.dim(), 0), key=lambda d: (d in event_dims, d))
    return x.permute(perm).reshape(batch_shape + (-1,))


class AutoGaussian(AutoGuide):
    """A Gaussian guide whose precision has the sparsity of the model's factor graph.

    ``AutoGaussian(model)`` builds an :class:`AutoGaussianDense` (Pyro's default backend).

    :param model: the model; its latent sites must be continuous and fully vectorized.
    :param init_loc_fn: the init strategy for the locs.
    :param init_scale: the initial scale of each site.
    :param backend: ``"dense"`` (default); ``"funsor"`` is not available in Ember.
    :raises ValueError: for a nonpositive ``init_scale``, or (on the first call) a site whose
        batch shape does not match its plates.
    :raises NotImplementedError: for another backend.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     a = ember.sample("a", dist.Normal(0.0, 1.0))
    ...     ember.sample("b", dist.Normal(a, 1.0), obs=torch.tensor(0.5))
    >>> guide = AutoGaussian(model)
    >>> type(guide).__name__, sorted(guide())
    ('AutoGaussianDense', ['a'])
    """

    scale_constraint: constraints.Constraint = constraints.softplus_positive
    default_backend = "dense"

    def __new__(cls, *args: Any, backend: str | None = None, **kwargs: Any) -> AutoGaussian:
        if cls is AutoGaussian:
            chosen = cls.default_backend if backend is None else backend
            if chosen != "dense":
                raise NotImplementedError(f'AutoGaussian(..., backend="{chosen}") is not available in Ember; use backend="dense"')
            cls = AutoGaussianDense
        instance: AutoGaussian = super().__new__(cls)
        return instance

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        init_loc_fn: InitFn = init_to_feasible,
        init_scale: float = 0.1,
        backend: str | None = None,
    ) -> None:
        if not isinstance(init_scale, float) or not init_scale > 0:
            raise ValueError(f"Expected init_scale > 0. but got {init_scale}")
        self._init_scale = init_scale
        self._original_model: tuple[Callable[..., Any], ...] | None = (model,)
        super().__init__(InitMessenger(init_loc_fn)(model))

    @staticmethod
    def _prototype_hide_fn(msg: Message) -> bool:
        return not is_sample_site(msg)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        assert self.prototype_trace is not None and self._original_model is not None
        nodes = self.prototype_trace.nodes
        self.locs = PyroModule()
        self.scales = PyroModule()
        self.white_vecs = PyroModule()
        self.prec_sqrts = PyroModule()
        self._factors: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._plates: OrderedDict[str, _Plates] = OrderedDict()
        self._event_numel: OrderedDict[str, int] = OrderedDict()
        self._unconstrained_event_shapes: OrderedDict[str, torch.Size] = OrderedDict()
        with block():
            self.dependencies = get_dependencies(self._original_model[0], args, kwargs)["prior_dependencies"]
        self._original_model = None
        # An observed site that reads no latent is a constant factor: drop it.
        for d, upstreams in list(self.dependencies.items()):
            if all(nodes[u]["is_observed"] for u in upstreams if u in nodes):
                del self.dependencies[d]
        factor_sites = [
            (d, site) for d, site in nodes.items() if site["type"] == "sample" and not site_is_subsample(site) and d in self.dependencies
        ]
        for d, site in factor_sites:  # before any param exists, so a bad model leaves no state
            fn: Any = site["fn"]
            if fn.batch_shape != _plates_to_shape(frozenset(site["cond_indep_stack"])):
                self.prototype_trace = None
                raise ValueError(f"Shape mismatch at site '{d}'. Are you missing a pyro.plate() or .to_event()?")
        init_loc = torch.zeros(())
        for d, site in factor_sites:
            fn = site["fn"]
            assert all(f.vectorized for f in site["cond_indep_stack"])
            self._factors[d] = {
                "name": d,
                "cond_indep_stack": site["cond_indep_stack"],
                "is_observed": site["is_observed"],
                "fn": SimpleNamespace(support=fn.support, batch_shape=fn.batch_shape, event_dim=fn.event_dim),
            }
            plates: _Plates = frozenset(site["cond_indep_stack"])
            if site["is_observed"]:
                plates &= frozenset().union(*(self._plates[u] for u in self.dependencies[d] if u != d))
            self._plates[d] = plates
            if site["is_observed"]:
                numel = fn.event_shape.numel()
                for f in set(site["cond_indep_stack"]) - plates:
                    numel *= f.size
                self._event_numel[d] = numel
                continue
            with helpful_support_errors(site):
                init_loc = biject_to(fn.support).inv(site["value"]).detach()
            event_shape = init_loc.shape[len(fn.batch_shape) :]
            self._unconstrained_event_shapes[d] = event_shape
            self._event_numel[d] = event_shape.numel()
            event_dim = len(event_shape)
            deep_setattr(self.locs, d, PyroParam(init_loc, event_dim=event_dim))
            scale = torch.full_like(init_loc, self._init_scale)
            deep_setattr(self.scales, d, PyroParam(scale, constraint=self.scale_constraint, event_dim=event_dim))
        for d, factor in self._factors.items():
            u_size = 0
            for u in self.dependencies[d]:
                if not self._factors[u]["is_observed"]:
                    broken_shape = _plates_to_shape(self._plates[u] - self._plates[d])
                    u_size += broken_shape.numel() * self._event_numel[u]
            d_size = self._event_numel[d]
            if factor["is_observed"]:
                d_size = min(d_size, u_size)  # a factor never needs more rank than its inputs
            batch_shape = _plates_to_shape(self._plates[d])
            white_vec = init_loc.new_zeros(batch_shape + (d_size,))
            prec_sqrt = torch.rand(batch_shape + (u_size, d_size), dtype=init_loc.dtype, device=init_loc.device)
            prec_sqrt.sub_(0.5).mul_(self._init_scale)
            if not factor["is_observed"]:
                prec_sqrt.diagonal(dim1=-2, dim2=-1).fill_(1)
            deep_setattr(self.white_vecs, d, PyroParam(white_vec, event_dim=1))
            deep_setattr(self.prec_sqrts, d, PyroParam(prec_sqrt, event_dim=2))

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sample the joint latent, then each latent site as a point mass; the values by name."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        aux_values = self._sample_aux_values(temperature=1.0)
        values, log_densities = self._transform_values(aux_values)
        plates = self._create_plates(*args, **kwargs)
        for name, factor in self._factors.items():
            if factor["is_observed"]:
                continue
            with ExitStack() as stack:
                for frame in factor["cond_indep_stack"]:
                    stack.enter_context(plates[frame.name])
                values[name] = sample(name, Delta(values[name], log_densities[name], factor["fn"].event_dim))
        return values

    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Each latent site at the joint Gaussian's mean, mapped to its support."""
        with torch.no_grad(), mask(mask=False):
            aux_values = self._sample_aux_values(temperature=0.0)
            values, _ = self._transform_values(aux_values)
        return values

    def _transform_values(self, aux_values: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        values: dict[str, torch.Tensor] = {}
        log_densities: dict[str, Any] = defaultdict(float)
        compute_density = am_i_wrapped() and get_mask() is not False
        for name, factor in self._factors.items():
            if factor["is_observed"]:
                continue
            loc: torch.Tensor = attrgetter(name)(self.locs)
            scale: torch.Tensor = attrgetter(name)(self.scales)
            unconstrained = aux_values[name] * scale + loc
            transform = biject_to(factor["fn"].support)
            values[name] = transform(unconstrained)
            if compute_density:
                assert transform.codomain.event_dim == factor["fn"].event_dim
                log_scale = scale.log().reshape(factor["fn"].batch_shape + (-1,)).sum(-1)
                log_densities[name] = transform.inv.log_abs_det_jacobian(values[name], unconstrained) - log_scale
        return values, log_densities

    def _sample_aux_values(self, *, temperature: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class AutoGaussianDense(AutoGaussian):
    """The dense backend of :class:`AutoGaussian`: one full joint precision matrix.

    :param model: the model.
    :param init_loc_fn: the init strategy for the locs.
    :param init_scale: the initial scale of each site.
    :param backend: ignored.
    """

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self._dense_shapes: dict[str, tuple[torch.Size, torch.Size]] = {}
        global_indices: dict[str, torch.Tensor] = {}
        pos = 0
        for d, event_shape in self._unconstrained_event_shapes.items():
            batch_shape = self._factors[d]["fn"].batch_shape
            self._dense_shapes[d] = batch_shape, event_shape
            end = pos + (batch_shape + event_shape).numel()
            global_indices[d] = torch.arange(pos, end).reshape(batch_shape + (-1,))
            pos = end
        self._dense_size = pos
        # Where each factor's entries land in the flat joint info vector and precision matrix.
        self._dense_scatter: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for d in self._factors:
            prec_sqrt_shape = attrgetter(d)(self.prec_sqrts).shape
            index1 = torch.zeros(prec_sqrt_shape[:-1], dtype=torch.long)
            index2 = torch.zeros(prec_sqrt_shape[:-1] + prec_sqrt_shape[-2:-1], dtype=torch.long)
            upstreams = [u for u in self.dependencies[d] if not self._factors[u]["is_observed"]]
            local: dict[str, torch.Tensor] = {}
            offsets: dict[str, int] = {}
            start = 0
            for u in upstreams:
                offsets[u] = start
                local[u] = _break_plates(global_indices[u], self._plates[u], self._plates[d])
                start += local[u].size(-1)
                index1[..., offsets[u] : start] = local[u]
            for u, v in itertools.product(upstreams, upstreams):
                u_stop, v_stop = offsets[u] + local[u].size(-1), offsets[v] + local[v].size(-1)
                index2[..., offsets[u] : u_stop, offsets[v] : v_stop] = self._dense_size * local[u].unsqueeze(-1) + local[v].unsqueeze(-2)
            self._dense_scatter[d] = index1.reshape(-1), index2.reshape(-1)

    def _sample_aux_values(self, *, temperature: float) -> dict[str, torch.Tensor]:
        mvn = self._dense_get_mvn()
        if temperature == 0:
            flat_samples = mvn.mean
        elif temperature == 1:
            flat_samples = sample(f"_{self._pyro_name}_latent", mvn, infer={"is_auxiliary": True})
        else:
            raise NotImplementedError(f"Invalid temperature: {temperature}")
        return self._dense_unflatten(flat_samples)

    def _dense_unflatten(self, flat_samples: torch.Tensor) -> dict[str, torch.Tensor]:
        sample_shape = flat_samples.shape[:-1]
        samples: dict[str, torch.Tensor] = {}
        pos = 0
        for d, (batch_shape, event_shape) in self._dense_shapes.items():
            end = pos + (batch_shape + event_shape).numel()
            shape = torch.broadcast_shapes(sample_shape, batch_shape) + event_shape  # type: ignore[no-untyped-call]  # torch: unannotated
            samples[d] = flat_samples[..., pos:end].reshape(shape)
            pos = end
        return samples

    def _dense_flatten(self, samples: dict[str, torch.Tensor]) -> torch.Tensor:
        flat = []
        for d, (batch_shape, event_shape) in self._dense_shapes.items():
            shape = samples[d].shape
            flat.append(samples[d].reshape(shape[: len(shape) - len(batch_shape) - len(event_shape)] + (-1,)))
        return torch.cat(flat, dim=-1)

    def _dense_get_mvn(self) -> MultivariateNormal:
        flat_info_vec = torch.zeros(self._dense_size)
        flat_precision = torch.zeros(self._dense_size**2)
        for d, (index1, index2) in self._dense_scatter.items():
            white_vec: torch.Tensor = attrgetter(d)(self.white_vecs)
            prec_sqrt: torch.Tensor = attrgetter(d)(self.prec_sqrts)
            info_vec = (prec_sqrt @ white_vec[..., None])[..., 0]
            precision = prec_sqrt @ prec_sqrt.mT
            flat_info_vec = flat_info_vec.scatter_add(0, index1, info_vec.reshape(-1))
            flat_precision = flat_precision.scatter_add(0, index2, precision.reshape(-1))
        precision = flat_precision.reshape(self._dense_size, self._dense_size)
        scale_tril = precision_to_scale_tril(precision)
        loc = (scale_tril @ (scale_tril.mT @ flat_info_vec.unsqueeze(-1))).squeeze(-1)
        return MultivariateNormal(loc, scale_tril=scale_tril)
