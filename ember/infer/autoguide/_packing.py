"""``AutoContinuous``: the base of the joint autoguides, over one packed latent vector.

Each latent site is mapped to unconstrained space, flattened, and concatenated into one vector,
whose posterior a subclass chooses (see :mod:`ember.infer.autoguide.continuous`). This module
holds the packing: the per-site table, the packed initial value, and the unpacking of a draw
into point masses at each site.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Iterator, NamedTuple

import torch
from torch.distributions import biject_to

from ember.distributions import Delta, Normal, TransformedDistribution
from ember.distributions.util import sum_rightmost
from ember.infer.autoguide.guide import AutoGuide
from ember.infer.autoguide.initialization import InitFn, InitMessenger, init_to_median
from ember.infer.autoguide.utils import (
    _has_plain_inverse,
    _is_identity,
    _log_density,
    _product,
    helpful_support_errors,
)
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.runtime import get_mask
from ember.primitives import sample

__all__ = ["AutoContinuous"]


class _PackedSite(NamedTuple):
    """Where a site lives in the packed latent vector, and how to map it back."""

    name: str
    site: Message
    size: int
    unconstrained_shape: torch.Size
    event_dim: int  # of the unconstrained value
    transform: Any  # a Transform (torch leaves its methods unannotated)
    identity: bool
    plain_inverse: bool


class AutoContinuous(AutoGuide):
    """Base class of the joint guides over one packed unconstrained latent vector.

    Subclasses implement :meth:`get_posterior` (or :meth:`get_base_dist` and
    :meth:`get_transform`). The guide samples the vector as the auxiliary site
    ``"_{GuideName}_latent"``, then each latent site as a point mass at its slice of it.

    :param model: the model; its latent sites must be continuous.
    :param init_loc_fn: the init strategy for the posterior's center.
    """

    def __init__(self, model: Callable[..., Any], init_loc_fn: InitFn = init_to_median) -> None:
        self._packed: list[_PackedSite] | None = None
        super().__init__(InitMessenger(init_loc_fn)(model))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_packed"] = None  # a cache of transforms, rebuilt on the next call
        return state

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self._packed = None
        self._unconstrained_shapes: dict[str, torch.Size] = {}
        self._cond_indep_stacks: dict[str, tuple[CondIndepStackFrame, ...]] = {}
        for name, site in self._latent_sites():
            fn: Any = site["fn"]
            with helpful_support_errors(site):
                self._unconstrained_shapes[name] = biject_to(fn.support).inv(site["value"]).shape
            self._cond_indep_stacks[name] = site["cond_indep_stack"]
        self.latent_dim = sum(_product(shape) for shape in self._unconstrained_shapes.values())
        if self.latent_dim == 0:
            raise RuntimeError(f"{type(self).__name__} found no latent variables; Use an empty guide instead")

    def _packed_sites(self) -> list[_PackedSite]:
        if self._packed is None:
            table = []
            for name, site in self._latent_sites():
                shape = self._unconstrained_shapes[name]
                fn: Any = site["fn"]
                event_dim = fn.event_dim + len(shape) - site["value"].dim()
                transform = biject_to(fn.support)
                identity, plain = _is_identity(transform), _has_plain_inverse(transform)
                table.append(_PackedSite(name, site, _product(shape), shape, event_dim, transform, identity, plain))
            self._packed = table
        return self._packed

    def _init_loc(self) -> torch.Tensor:
        """The packed unconstrained initial values of all latent sites."""
        parts = [packed.transform.inv(packed.site["value"].detach()).reshape(-1) for packed in self._packed_sites()]
        latent = torch.cat(parts)
        assert latent.size() == (self.latent_dim,)
        return latent

    def get_base_dist(self) -> Any:
        """The base distribution of the posterior written as a transformed distribution."""
        raise NotImplementedError

    def get_transform(self, *args: Any, **kwargs: Any) -> Any:
        """The transform of the posterior written as a transformed distribution."""
        raise NotImplementedError

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        """The posterior of the packed latent vector."""
        return TransformedDistribution(self.get_base_dist(), self.get_transform(*args, **kwargs))

    def sample_latent(self, *args: Any, **kwargs: Any) -> Any:
        """Sample the packed latent vector, as the auxiliary site ``"_{name}_latent"``."""
        posterior = self.get_posterior(*args, **kwargs)
        return sample(f"_{self._pyro_name}_latent", posterior, infer={"is_auxiliary": True})

    def _unpack_latent(self, latent: torch.Tensor) -> Iterator[tuple[_PackedSite, torch.Tensor]]:
        """Split a packed latent (with any batch dims on the left) into per-site unconstrained values."""
        batch_shape = latent.shape[:-1]  # e.g. vectorized particles outside the guide
        pos = 0
        for packed in self._packed_sites():
            shape = torch.broadcast_shapes(packed.unconstrained_shape, batch_shape + (1,) * packed.event_dim)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            yield packed, latent[..., pos : pos + packed.size].reshape(shape)
            pos += packed.size
        if not torch._C._get_tracing_state():
            assert pos == latent.size(-1)

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sample the packed latent, then every latent site as a point mass; values by name."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        latent = self.sample_latent(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        skip_density = get_mask() is False  # only plates are entered below; they keep the mask
        result: dict[str, torch.Tensor] = {}
        for packed, unconstrained in self._unpack_latent(latent):
            log_density: torch.Tensor | float = 0.0
            fn: Any = packed.site["fn"]
            site_event_dim: int = fn.event_dim
            if packed.identity:
                value = unconstrained
            else:
                value = packed.transform(unconstrained)
                if not skip_density:
                    log_det = _log_density(packed.transform, packed.plain_inverse, value, unconstrained)
                    log_density = sum_rightmost(log_det, log_det.dim() - value.dim() + site_event_dim)
            # No argument checks: the value and density come from the posterior's own draw.
            point = Delta(value, log_density=log_density, event_dim=site_event_dim, validate_args=False)
            with ExitStack() as stack:
                for frame in self._cond_indep_stacks[packed.name]:
                    stack.enter_context(plates[frame.name])
                result[packed.name] = sample(packed.name, point)
        return result

    def _loc_scale(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's packed marginal ``(loc, scale)``, for :meth:`median` and :meth:`quantiles`."""
        raise NotImplementedError

    @torch.no_grad()
    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The posterior median of each latent site, by name."""
        loc, _ = self._loc_scale(*args, **kwargs)
        return {packed.name: packed.transform(value) for packed, value in self._unpack_latent(loc.detach())}

    @torch.no_grad()
    def quantiles(self, quantiles: Any, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Marginal posterior quantiles of each latent site, stacked along a new leftmost dim.

        :param quantiles: the probabilities, each between 0 and 1 (a list or tensor).
        """
        loc, scale = self._loc_scale(*args, **kwargs)
        probs = torch.tensor(quantiles, dtype=loc.dtype, device=loc.device).unsqueeze(-1)
        collected: dict[str, list[torch.Tensor]] = {}
        for latent in Normal(loc, scale).icdf(probs):
            for packed, value in self._unpack_latent(latent):
                collected.setdefault(packed.name, []).append(packed.transform(value))
        return {name: torch.stack(values) for name, values in collected.items()}
