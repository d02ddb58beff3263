"""Joint autoguides (ADVI): one posterior over all latent sites, packed into a single vector.

Each latent site is mapped to unconstrained space, flattened, and concatenated; a subclass of
:class:`AutoContinuous` chooses the posterior of that vector (diagonal, full or low-rank
normal, or a point mass for the Laplace approximation).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Iterator, NamedTuple

import torch
from torch.distributions import biject_to

from ember.distributions import (
    Delta,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
    constraints,
)
from ember.distributions.transforms import AffineTransform
from ember.distributions.util import sum_rightmost
from ember.infer.autoguide.guide import AutoGuide
from ember.infer.autoguide.initialization import InitFn, InitMessenger, init_to_median
from ember.infer.autoguide.utils import (
    _check_init_scale,
    _has_plain_inverse,
    _hessian,
    _is_identity,
    _log_density,
    _LowerCholeskyAffine,
    _product,
    eye_like,
    helpful_support_errors,
)
from ember.nn.module import PyroParam
from ember.poutine.handlers import replay, trace
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.runtime import get_mask
from ember.primitives import sample

__all__ = [
    "AutoContinuous",
    "AutoDiagonalNormal",
    "AutoLaplaceApproximation",
    "AutoLowRankMultivariateNormal",
    "AutoMultivariateNormal",
]


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


class AutoMultivariateNormal(AutoContinuous):
    """A full-covariance normal posterior, parametrised by a scaled unit Cholesky factor.

    Parameters: ``loc``, ``scale`` (positive) and ``scale_tril`` (unit lower triangular);
    the covariance factor is ``scale[..., None] * scale_tril``.

    :param model: the model.
    :param init_loc_fn: the init strategy for ``loc``.
    :param init_scale: the initial marginal scale.
    :raises ValueError: unless ``init_scale`` is a positive float.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    >>> guide = AutoMultivariateNormal(model)
    >>> _ = guide()
    >>> guide.scale_tril.shape
    torch.Size([2, 2])
    """

    scale_constraint: constraints.Constraint = constraints.softplus_positive
    scale_tril_constraint: constraints.Constraint = constraints.unit_lower_cholesky
    loc: torch.Tensor
    scale: torch.Tensor
    scale_tril: torch.Tensor

    def __init__(self, model: Callable[..., Any], init_loc_fn: InitFn = init_to_median, init_scale: float = 0.1) -> None:
        self._init_scale = _check_init_scale(init_scale)
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self.loc = torch.nn.Parameter(self._init_loc())
        # setattr: the attribute reads as a tensor, but is declared by assigning a PyroParam.
        setattr(self, "scale", PyroParam(torch.full_like(self.loc, self._init_scale), self.scale_constraint))
        setattr(self, "scale_tril", PyroParam(eye_like(self.loc, self.latent_dim), self.scale_tril_constraint))

    def get_base_dist(self) -> Any:
        return Normal(torch.zeros_like(self.loc), torch.ones_like(self.loc)).to_event(1)

    def get_transform(self, *args: Any, **kwargs: Any) -> Any:
        scale_tril = self.scale[..., None] * self.scale_tril
        return _LowerCholeskyAffine(self.loc, scale_tril)

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        """A multivariate normal over the packed latent."""
        scale_tril = self.scale[..., None] * self.scale_tril  # read before loc: Pyro's site order
        return MultivariateNormal(self.loc, scale_tril=scale_tril)

    def _loc_scale(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        scale_tril = self.scale[..., None] * self.scale_tril
        scale = scale_tril.pow(2).sum(-1).sqrt()
        assert scale.shape == self.loc.shape
        return self.loc, scale


class AutoDiagonalNormal(AutoContinuous):
    """A diagonal normal posterior over the packed latent: parameters ``loc`` and ``scale``.

    :param model: the model.
    :param init_loc_fn: the init strategy for ``loc``.
    :param init_scale: the initial scale.
    :raises ValueError: unless ``init_scale`` is a positive float.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("a", dist.Normal(0.0, 1.0))
    ...     ember.sample("b", dist.LogNormal(torch.zeros(2), 1.0).to_event(1))
    >>> from ember.infer.autoguide import init_to_feasible
    >>> guide = AutoDiagonalNormal(model, init_loc_fn=init_to_feasible)
    >>> sorted(guide()), guide.loc.shape, guide.median()["b"]
    (['a', 'b'], torch.Size([3]), tensor([1., 1.]))
    """

    scale_constraint: constraints.Constraint = constraints.softplus_positive
    loc: torch.Tensor
    scale: torch.Tensor

    def __init__(self, model: Callable[..., Any], init_loc_fn: InitFn = init_to_median, init_scale: float = 0.1) -> None:
        self._init_scale = _check_init_scale(init_scale)
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self.loc = torch.nn.Parameter(self._init_loc())
        setattr(self, "scale", PyroParam(self.loc.new_full((self.latent_dim,), self._init_scale), self.scale_constraint))

    def get_base_dist(self) -> Any:
        return Normal(torch.zeros_like(self.loc), torch.ones_like(self.loc)).to_event(1)

    def get_transform(self, *args: Any, **kwargs: Any) -> Any:
        return AffineTransform(self.loc, self.scale)

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        """A diagonal normal over the packed latent."""
        return Normal(self.loc, self.scale).to_event(1)

    def _loc_scale(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.loc, self.scale


class AutoLowRankMultivariateNormal(AutoContinuous):
    """A low-rank-plus-diagonal normal posterior: parameters ``loc``, ``scale``, ``cov_factor``.

    The covariance is ``D (F F^T + I) D`` with ``D = diag(scale)`` and ``F = cov_factor``.

    :param model: the model.
    :param init_loc_fn: the init strategy for ``loc``.
    :param init_scale: the approximate initial marginal scale.
    :param rank: the rank of ``cov_factor`` (default: about the square root of the latent size).
    :raises ValueError: unless ``init_scale`` is a positive float and ``rank`` positive or ``None``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("x", dist.Normal(torch.zeros(9), 1.0).to_event(1))
    >>> guide = AutoLowRankMultivariateNormal(model)
    >>> _ = guide()
    >>> guide.cov_factor.shape
    torch.Size([9, 3])
    """

    scale_constraint: constraints.Constraint = constraints.softplus_positive
    loc: torch.Tensor
    scale: torch.Tensor
    cov_factor: torch.Tensor

    def __init__(
        self,
        model: Callable[..., Any],
        init_loc_fn: InitFn = init_to_median,
        init_scale: float = 0.1,
        rank: int | None = None,
    ) -> None:
        self._init_scale = _check_init_scale(init_scale)
        if not (rank is None or isinstance(rank, int) and rank > 0):
            raise ValueError(f"Expected rank > 0 but got {rank}")
        self.rank = rank
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self.loc = torch.nn.Parameter(self._init_loc())
        if self.rank is None:
            self.rank = int(round(self.latent_dim**0.5))
        # Half the variance from the diagonal and, on average, half from the low-rank part.
        init_scale = self.loc.new_full((self.latent_dim,), 0.5**0.5 * self._init_scale)
        setattr(self, "scale", PyroParam(init_scale, constraint=self.scale_constraint))
        self.cov_factor = torch.nn.Parameter(self.loc.new_empty(self.latent_dim, self.rank).normal_(0, 1 / self.rank**0.5))

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        """A low-rank multivariate normal over the packed latent."""
        scale = self.scale
        cov_factor = self.cov_factor * scale.unsqueeze(-1)  # read before loc: Pyro's site order
        return LowRankMultivariateNormal(self.loc, cov_factor, scale * scale)

    def _loc_scale(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.loc, self.scale * (self.cov_factor.pow(2).sum(-1) + 1).sqrt()


class AutoLaplaceApproximation(AutoContinuous):
    """A MAP guide in unconstrained space that can then become a Laplace approximation.

    Train it like :class:`~ember.infer.autoguide.AutoDelta`, then call
    :meth:`laplace_approximation` for an :class:`AutoMultivariateNormal` centred at the mode,
    with the inverse Hessian of the negative log joint as its covariance.

    :param model: the model.
    :param init_loc_fn: the init strategy for ``loc``.
    """

    loc: torch.Tensor

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self.loc = torch.nn.Parameter(self._init_loc())

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        """A point mass at ``loc``."""
        return Delta(self.loc).to_event(1)

    def laplace_approximation(self, *args: Any, **kwargs: Any) -> AutoMultivariateNormal:
        """An :class:`AutoMultivariateNormal` with the Laplace approximation's ``loc`` and covariance as buffers."""
        guide_trace = trace(self).get_trace(*args, **kwargs)
        model_trace = trace(replay(self.model, trace=guide_trace)).get_trace(*args, **kwargs)
        loss = guide_trace.log_prob_sum() - model_trace.log_prob_sum()
        assert isinstance(loss, torch.Tensor)
        hessian = _hessian(loss, self.loc)
        with torch.no_grad():
            loc = self.loc.detach()
            cov = torch.linalg.inv(hessian)
            scale = cov.diagonal().sqrt()
            correlation = cov / scale[:, None] / scale[None, :]
            scale_tril = torch.linalg.cholesky(correlation)
        gaussian_guide = AutoMultivariateNormal(self.model)
        gaussian_guide._setup_prototype(*args, **kwargs)
        del gaussian_guide.loc, gaussian_guide.scale, gaussian_guide.scale_tril
        gaussian_guide.register_buffer("loc", loc)
        gaussian_guide.register_buffer("scale", scale)
        gaussian_guide.register_buffer("scale_tril", scale_tril)
        return gaussian_guide
