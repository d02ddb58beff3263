"""Per-site autoguides: :class:`AutoDelta` (MAP) and :class:`AutoNormal` (mean-field normal)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, NamedTuple

import torch
from torch.distributions import biject_to

from ember.distributions import Delta, Normal, constraints
from ember.distributions.util import sum_rightmost
from ember.infer.autoguide.guide import AutoGuide, PlatesFn
from ember.infer.autoguide.initialization import InitFn, InitMessenger, init_to_feasible, init_to_median
from ember.infer.autoguide.utils import (
    _check_init_scale,
    _has_plain_inverse,
    _is_identity,
    _log_density,
    deep_getattr,
    deep_setattr,
    helpful_support_errors,
    periodic_repeat,
)
from ember.nn.module import PyroModule, PyroParam
from ember.poutine.message import Message
from ember.poutine.runtime import get_mask
from ember.primitives import plate, sample

__all__ = ["AutoDelta", "AutoNormal"]


def _repeat_to_full_size(value: torch.Tensor, site: Message, event_dim: int) -> torch.Tensor:
    """Tile an initial value along each subsampled plate's dim up to the plate's full size."""
    for frame in site["cond_indep_stack"]:
        full_size = frame.full_size or frame.size
        if full_size != frame.size:
            assert frame.dim is not None
            value = periodic_repeat(value, full_size, frame.dim - event_dim).contiguous()
    return value


def _enter_plates(stack: ExitStack, plates: dict[str, plate], site: Message) -> None:
    for frame in site["cond_indep_stack"]:
        if frame.vectorized:
            stack.enter_context(plates[frame.name])


class AutoDelta(AutoGuide):
    """A MAP guide: a point mass at a learned (constrained) value for every latent site.

    The parameter of site ``x`` is ``AutoDelta.x``, constrained to the site's support.

    :param model: the model.
    :param init_loc_fn: the init strategy for the point values.
    :param create_plates: as for :class:`~ember.infer.autoguide.AutoGuide`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("s", dist.LogNormal(0.0, 1.0))
    >>> guide = AutoDelta(model, init_loc_fn=init_to_median)
    >>> guide()["s"].shape, list(ember.get_param_store())
    (torch.Size([]), ['AutoDelta.s'])
    """

    def __init__(
        self, model: Callable[..., Any], init_loc_fn: InitFn = init_to_median, *, create_plates: PlatesFn | None = None
    ) -> None:
        self.init_loc_fn = init_loc_fn
        super().__init__(InitMessenger(init_loc_fn)(model), create_plates=create_plates)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        for name, site in self._latent_sites():
            fn: Any = site["fn"]
            value = _repeat_to_full_size(site["value"].detach(), site, fn.event_dim)
            with helpful_support_errors(site):
                deep_setattr(self, name, PyroParam(value, fn.support, fn.event_dim))

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sample every latent site at its point value; the values by site name."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        result: dict[str, torch.Tensor] = {}
        for name, site in self._latent_sites():
            fn: Any = site["fn"]
            with ExitStack() as stack:
                _enter_plates(stack, plates, site)
                point = Delta(deep_getattr(self, name), event_dim=fn.event_dim)
                result[name] = sample(name, point)
        return result

    @torch.no_grad()
    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The point values (detached), by site name."""
        return {name: value.detach() for name, value in self(*args, **kwargs).items()}


class _NormalSite(NamedTuple):
    """What :meth:`AutoNormal.forward` needs per site, computed once from the prototype."""

    name: str
    site: Message
    transform: Any  # a Transform (torch leaves its methods unannotated)
    identity: bool
    plain_inverse: bool
    event_dim: int  # of the unconstrained value
    site_event_dim: int  # of the constrained value


class AutoNormal(AutoGuide):
    """A mean-field guide: an independent normal per latent site, in unconstrained space.

    Site ``x`` gets parameters ``AutoNormal.locs.x`` and ``AutoNormal.scales.x`` and two guide
    sites: an auxiliary normal ``x_unconstrained`` and a point mass ``x`` at its image in the
    support, carrying the log Jacobian as its density.

    :param model: the model.
    :param init_loc_fn: the init strategy for the locs (in constrained space).
    :param init_scale: the initial scale of every unconstrained normal.
    :param create_plates: as for :class:`~ember.infer.autoguide.AutoGuide`.
    :raises ValueError: unless ``init_scale`` is a positive float.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("x", dist.Normal(0.0, 1.0))
    >>> guide = AutoNormal(model, init_scale=0.5)
    >>> _ = guide()
    >>> guide.median()["x"], guide.scales.x
    (tensor(0.), tensor(0.5000, grad_fn=<...>))
    """

    scale_constraint: constraints.Constraint = constraints.softplus_positive

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        init_loc_fn: InitFn = init_to_feasible,
        init_scale: float = 0.1,
        create_plates: PlatesFn | None = None,
    ) -> None:
        self.init_loc_fn = init_loc_fn
        self._init_scale = _check_init_scale(init_scale)
        self._sites: list[_NormalSite] | None = None
        super().__init__(InitMessenger(init_loc_fn)(model), create_plates=create_plates)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_sites"] = None  # a cache of transforms, rebuilt on the next call
        return state

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self._event_dims: dict[str, int] = {}
        self._sites = None
        self.locs = PyroModule()
        self.scales = PyroModule()
        for name, site in self._latent_sites():
            fn: Any = site["fn"]
            with helpful_support_errors(site):
                init_loc = biject_to(fn.support).inv(site["value"].detach()).detach()
            # The unconstrained event may have more dims than the constrained one (e.g. simplex).
            event_dim = fn.event_dim + init_loc.dim() - site["value"].dim()
            self._event_dims[name] = event_dim
            init_loc = _repeat_to_full_size(init_loc, site, event_dim)
            init_scale = torch.full_like(init_loc, self._init_scale)
            deep_setattr(self.locs, name, PyroParam(init_loc, constraints.real, event_dim))
            deep_setattr(self.scales, name, PyroParam(init_scale, self.scale_constraint, event_dim))

    def _site_table(self) -> list[_NormalSite]:
        if self._sites is None:
            table = []
            for name, site in self._latent_sites():
                fn: Any = site["fn"]
                transform = biject_to(fn.support)
                identity, plain = _is_identity(transform), _has_plain_inverse(transform)
                table.append(_NormalSite(name, site, transform, identity, plain, self._event_dims[name], fn.event_dim))
            self._sites = table
        return self._sites

    def _get_loc_and_scale(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return deep_getattr(self.locs, name), deep_getattr(self.scales, name)

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sample every latent site; the constrained values by site name."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        # Only plates are entered below, and they leave the mask alone: ask once, not per site.
        skip_density = get_mask() is False
        result: dict[str, torch.Tensor] = {}
        locs, scales = self.locs, self.scales
        for spec in self._site_table():
            with ExitStack() as stack:
                _enter_plates(stack, plates, spec.site)
                unconstrained = sample(
                    spec.name + "_unconstrained",
                    Normal(deep_getattr(locs, spec.name), deep_getattr(scales, spec.name)).to_event(spec.event_dim),
                    infer={"is_auxiliary": True},
                )
                log_density: torch.Tensor | float = 0.0
                if spec.identity:
                    value = unconstrained  # log |det J| is zero: no kernel for it
                else:
                    value = spec.transform(unconstrained)
                    if not skip_density:
                        log_det = _log_density(spec.transform, spec.plain_inverse, value, unconstrained)
                        log_density = sum_rightmost(log_det, log_det.dim() - value.dim() + spec.site_event_dim)
                # No argument checks: the Normal above already rejected a NaN loc or scale, and
                # the value and density are computed from its draw.
                point = Delta(value, log_density=log_density, event_dim=spec.site_event_dim, validate_args=False)
                result[spec.name] = sample(spec.name, point)
        return result

    @torch.no_grad()
    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The posterior median of each latent site (the image of its loc), by name."""
        medians: dict[str, torch.Tensor] = {}
        for name, site in self._latent_sites():
            loc, _ = self._get_loc_and_scale(name)
            fn: Any = site["fn"]
            median = biject_to(fn.support)(loc)
            medians[name] = median.clone() if median is loc else median
        return medians

    @torch.no_grad()
    def quantiles(self, quantiles: Any, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Posterior quantiles of each latent site, stacked along a new leftmost dim.

        :param quantiles: the probabilities, each between 0 and 1 (a list or tensor).
        """
        results: dict[str, torch.Tensor] = {}
        for name, site in self._latent_sites():
            loc, scale = self._get_loc_and_scale(name)
            probs = torch.tensor(quantiles, dtype=loc.dtype, device=loc.device)
            probs = probs.reshape((-1,) + (1,) * loc.dim())
            unconstrained = Normal(loc, scale).icdf(probs)
            fn: Any = site["fn"]
            results[name] = biject_to(fn.support)(unconstrained)
        return results
