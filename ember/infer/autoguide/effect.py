"""Effect-based autoguides: :class:`~ember.poutine.guide.GuideMessenger` s that are also modules.

Such a guide runs *around* the model: at each latent site it sees the model's prior,
conditioned on the values drawn upstream, and returns a posterior for it. Parameters are
created lazily, the first time a site is met, under names ``"locs.<site>"`` and
``"scales.<site>"``.
"""

from __future__ import annotations

from abc import ABCMeta
from typing import Any, Callable

import torch
from torch.distributions import biject_to

from ember.distributions import Normal, TransformedDistribution, constraints
from ember.distributions.transforms import AffineTransform
from ember.infer.autoguide.initialization import InitFn, init_to_feasible, init_to_mean
from ember.infer.autoguide.utils import (
    _check_init_scale,
    deep_getattr,
    deep_setattr,
    helpful_support_errors,
    periodic_repeat,
)
from ember.nn._pyro_module import _PyroModuleMeta
from ember.nn.module import PyroModule, PyroParam, pyro_method
from ember.poutine.message import new_message
from ember.poutine.guide import GuideMessenger
from ember.poutine.runtime import get_plates

__all__ = ["AutoHierarchicalNormalMessenger", "AutoMessenger", "AutoNormalMessenger", "AutoRegressiveMessenger"]


class _AutoMessengerMeta(ABCMeta, _PyroModuleMeta):
    """The metaclass of a class that is both an (abstract) guide messenger and a PyroModule."""


class AutoMessenger(GuideMessenger, PyroModule, metaclass=_AutoMessengerMeta):
    """Base class of the effect-based autoguides; subclasses implement ``get_posterior``.

    :param model: the model.
    :param amortized_plates: names of plates over which parameters are shared (one value for
        all members, e.g. under subsampling) rather than kept per member.
    """

    def __init__(self, model: Callable[..., Any], *, amortized_plates: tuple[str, ...] = ()) -> None:
        self.amortized_plates = amortized_plates
        super().__init__(model)

    @pyro_method
    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]  # Pyro's contract: a guide is called like its model
        # Plates already entered when the guide is called (e.g. vectorized particles) must
        # not shape the lazily created parameters.
        self._outer_plates = tuple(frame.name for frame in get_plates())
        try:
            return super().__call__(*args, **kwargs)
        finally:
            del self._outer_plates

    def __getstate__(self) -> dict[str, Any]:
        for parameter in self.parameters(recurse=True):
            parameter.__dict__.pop("unconstrained", None)  # the store's weak references do not pickle
        return super().__getstate__()

    def call(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        """Call the guide and return its values as a tuple sorted by site name (for the JIT)."""
        result = self(*args, **kwargs)
        return tuple(value for _, value in sorted(result.items()))

    @torch.no_grad()
    def _adjust_plates(self, value: torch.Tensor, event_dim: int) -> torch.Tensor:
        """Shape an initial value for a parameter: per member of the model's plates only."""
        for frame in get_plates():
            assert frame.dim is not None
            full_size = frame.full_size or frame.size
            dim = frame.dim - event_dim
            # By name: Pyro tests the frame itself against these names, which never matches,
            # so a first call inside a particle plate gives its parameters the particle dim.
            if frame.name in self._outer_plates or frame.name in self.amortized_plates:
                if -value.dim() <= dim:
                    value = value.mean(dim, keepdim=True)
            elif frame.size != full_size:
                value = periodic_repeat(value, full_size, dim).contiguous()
        for _ in range(value.dim() - event_dim):
            value = value.squeeze(0)
        return value

    @staticmethod
    def _support_transform(name: str, prior: Any) -> Any:
        """The bijection onto ``prior``'s support, naming the site if there is none."""
        with helpful_support_errors({"name": name, "fn": prior}):
            return biject_to(prior.support)

    def _initial_unconstrained(self, name: str, prior: Any, init_loc_fn: InitFn) -> tuple[torch.Tensor, int]:
        with torch.no_grad():
            transform = biject_to(prior.support)
            event_dim: int = transform.domain.event_dim
            constrained = init_loc_fn(new_message("sample", name, prior)).detach()
            return self._adjust_plates(transform.inv(constrained), event_dim), event_dim


class _AutoLocScaleMessenger(AutoMessenger):
    """An effect-based guide with params ``locs.<site>`` and ``scales.<site>`` at each site.

    Holds what :class:`AutoNormalMessenger` and :class:`AutoRegressiveMessenger` share: their
    options, and the lazy creation of the two params from the init strategy and ``init_scale``.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        init_loc_fn: InitFn = init_to_mean(fallback=init_to_feasible),
        init_scale: float = 0.1,
        amortized_plates: tuple[str, ...] = (),
    ) -> None:
        _check_init_scale(init_scale)
        super().__init__(model, amortized_plates=amortized_plates)
        self.init_loc_fn = init_loc_fn
        self._init_scale = init_scale

    def _initial_loc(self, unconstrained: torch.Tensor) -> torch.Tensor:
        """The initial ``locs.<site>``, from the init strategy's value in unconstrained space."""
        return unconstrained

    def _get_params(self, name: str, prior: Any) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return deep_getattr(self.locs, name), deep_getattr(self.scales, name)
        except AttributeError:
            pass
        init_loc, event_dim = self._initial_unconstrained(name, prior, self.init_loc_fn)
        init_loc = self._initial_loc(init_loc)
        init_scale = torch.full_like(init_loc, self._init_scale)
        deep_setattr(self, "locs." + name, PyroParam(init_loc, event_dim=event_dim))
        deep_setattr(self, "scales." + name, PyroParam(init_scale, constraints.positive, event_dim))
        return self._get_params(name, prior)


class AutoNormalMessenger(_AutoLocScaleMessenger):
    """An effect-based mean-field guide: a normal per site in unconstrained space.

    Like :class:`~ember.infer.autoguide.AutoNormal`, but subclasses can override
    :meth:`get_posterior` for some sites (using ``self.upstream_value(name)`` or the ``prior``
    conditioned on upstream values) and fall back to ``super().get_posterior`` for the rest.

    :param model: the model.
    :param init_loc_fn: the init strategy for the locs (in constrained space).
    :param init_scale: the initial scale of every unconstrained normal.
    :param amortized_plates: as for :class:`AutoMessenger`.
    :raises ValueError: unless ``init_scale`` is a positive float.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("x", dist.LogNormal(0.0, 1.0))
    >>> guide = AutoNormalMessenger(model)
    >>> sorted(guide()), sorted(ember.get_param_store())
    (['x'], ['locs.x', 'scales.x'])
    """

    _computing_median = False  # true while median() runs the model: sites then take their medians

    def get_posterior(self, name: str, prior: Any) -> Any:
        """A normal in the unconstrained space of ``prior``'s support, mapped into the support."""
        if self._computing_median:
            return self._get_posterior_median(name, prior)
        transform = self._support_transform(name, prior)
        loc, scale = self._get_params(name, prior)
        base: Any = Normal(loc, scale).to_event(transform.domain.event_dim)
        return TransformedDistribution(base, transform.with_cache())

    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Run the model with every latent site at its posterior median; all sample values by name."""
        self._computing_median = True
        try:
            return self(*args, **kwargs)
        finally:
            self._computing_median = False

    def _get_posterior_median(self, name: str, prior: Any) -> torch.Tensor:
        loc, _ = self._get_params(name, prior)
        median: torch.Tensor = biject_to(prior.support)(loc)
        return median


class AutoRegressiveMessenger(_AutoLocScaleMessenger):
    """An effect-based guide whose posterior is a learned affine map of the conditional prior.

    At each site the prior (given upstream posterior draws) is mapped to unconstrained space,
    scaled by ``scales.<site>``, shifted by ``locs.<site>`` and mapped back.

    :param model: the model.
    :param init_loc_fn: the init strategy for the locs (in constrained space).
    :param init_scale: the initial scale, mixing the prior into the initial posterior.
    :param amortized_plates: as for :class:`AutoMessenger`.
    :raises ValueError: unless ``init_scale`` is a positive float.
    """

    def get_posterior(self, name: str, prior: Any) -> Any:
        """The prior pushed through an affine map in unconstrained space."""
        transform = self._support_transform(name, prior)
        loc, scale = self._get_params(name, prior)
        affine = AffineTransform(loc, scale, event_dim=transform.domain.event_dim, cache_size=1)
        return TransformedDistribution(prior, [transform.inv.with_cache(), affine, transform.with_cache()])

    def _initial_loc(self, unconstrained: torch.Tensor) -> torch.Tensor:
        # Start from the mixture init_scale * prior + (1 - init_scale) * init_loc.
        return unconstrained * (1 - self._init_scale)


class AutoHierarchicalNormalMessenger(AutoNormalMessenger):
    """An effect-based normal guide whose mean follows the conditional prior's mean.

    At a hierarchical site the unconstrained posterior mean is
    ``locs.<site> + weights.<site> * transform.inv(prior.mean)``, so it moves with the values
    drawn upstream; other sites are mean-field as in :class:`AutoNormalMessenger`. Sites whose
    prior has no mean are not supported.

    :param model: the model.
    :param init_loc_fn: the init strategy for the locs (in constrained space).
    :param init_scale: the initial scale of every unconstrained normal.
    :param amortized_plates: as for :class:`AutoMessenger`.
    :param init_weight: the initial weight of the prior mean.
    :param hierarchical_sites: the sites to treat so (default: all of them).
    :raises ValueError: unless ``init_scale`` is a positive float.
    """

    weight_type = "element-wise"  # or "scalar": one weight per site

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        init_loc_fn: InitFn = init_to_mean(fallback=init_to_feasible),
        init_scale: float = 0.1,
        amortized_plates: tuple[str, ...] = (),
        init_weight: float = 1.0,
        hierarchical_sites: list[str] | None = None,
    ) -> None:
        super().__init__(model, init_loc_fn=init_loc_fn, init_scale=init_scale, amortized_plates=amortized_plates)
        self._init_weight = init_weight
        self._hierarchical_sites = hierarchical_sites

    def _is_hierarchical(self, name: str) -> bool:
        return self._hierarchical_sites is None or name in self._hierarchical_sites

    def get_posterior(self, name: str, prior: Any) -> Any:
        """A normal whose unconstrained mean is shifted by the weighted prior mean."""
        if self._computing_median:
            return self._get_posterior_median(name, prior)
        if not self._is_hierarchical(name):
            return super().get_posterior(name, prior)
        transform = self._support_transform(name, prior)
        loc, scale, weight = self._get_hierarchical_params(name, prior)
        base: Any = Normal(loc + transform.inv(prior.mean) * weight, scale).to_event(transform.domain.event_dim)
        return TransformedDistribution(base, transform.with_cache())

    def _get_hierarchical_params(self, name: str, prior: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        try:
            return deep_getattr(self.locs, name), deep_getattr(self.scales, name), deep_getattr(self.weights, name)
        except AttributeError:
            pass
        init_loc, event_dim = self._initial_unconstrained(name, prior, self.init_loc_fn)
        init_scale = torch.full_like(init_loc, self._init_scale)
        if self.weight_type == "scalar":
            init_weight, weight_event_dim = torch.full((), self._init_weight), None
        else:
            init_weight, weight_event_dim = torch.full_like(init_loc, self._init_weight), event_dim
        with torch.no_grad():
            prior_mean = self._adjust_plates(biject_to(prior.support).inv(prior.mean), event_dim)
            init_loc = init_loc - init_weight * prior_mean  # the prior mean's share is added back
        deep_setattr(self, "locs." + name, PyroParam(init_loc, event_dim=event_dim))
        deep_setattr(self, "scales." + name, PyroParam(init_scale, constraints.positive, event_dim))
        deep_setattr(self, "weights." + name, PyroParam(init_weight, constraints.positive, weight_event_dim))
        return self._get_hierarchical_params(name, prior)

    def _get_posterior_median(self, name: str, prior: Any) -> torch.Tensor:
        if not self._is_hierarchical(name):
            return super()._get_posterior_median(name, prior)
        transform = biject_to(prior.support)
        loc, _, weight = self._get_hierarchical_params(name, prior)
        median: torch.Tensor = transform(loc + transform.inv(prior.mean) * weight)
        return median
