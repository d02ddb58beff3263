"""Joint autoguides (ADVI): one posterior over all latent sites, packed into a single vector.

Each latent site is mapped to unconstrained space, flattened, and concatenated; a subclass of
:class:`AutoContinuous` (in :mod:`ember.infer.autoguide._packing`, re-exported here) chooses
the posterior of that vector (diagonal, full or low-rank normal, or a point mass for the
Laplace approximation).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ember.distributions import (
    Delta,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    constraints,
)
from ember.distributions.transforms import AffineTransform, LowerCholeskyAffine
from ember.infer.autoguide._packing import AutoContinuous as AutoContinuous
from ember.infer.autoguide.initialization import InitFn, init_to_median
from ember.infer.autoguide.utils import (
    _check_init_scale,
    _hessian,
    eye_like,
)
from ember.nn.module import PyroParam
from ember.poutine.handlers import replay, trace

__all__ = [
    "AutoContinuous",
    "AutoDiagonalNormal",
    "AutoLaplaceApproximation",
    "AutoLowRankMultivariateNormal",
    "AutoMultivariateNormal",
]


class _AutoAffineNormal(AutoContinuous):
    """A normal posterior written as an affine map of a standard normal around ``loc``.

    Holds what :class:`AutoMultivariateNormal` and :class:`AutoDiagonalNormal` share: the
    ``init_scale`` option, ``loc`` at the packed initial value, and the standard normal base
    of :meth:`get_base_dist`; subclasses add ``scale`` (and more) and the affine transform.
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

    def get_base_dist(self) -> Any:
        return Normal(torch.zeros_like(self.loc), torch.ones_like(self.loc)).to_event(1)


class AutoMultivariateNormal(_AutoAffineNormal):
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

    scale_tril_constraint: constraints.Constraint = constraints.unit_lower_cholesky
    scale_tril: torch.Tensor

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        # setattr: the attribute reads as a tensor, but is declared by assigning a PyroParam.
        setattr(self, "scale", PyroParam(torch.full_like(self.loc, self._init_scale), self.scale_constraint))
        setattr(self, "scale_tril", PyroParam(eye_like(self.loc, self.latent_dim), self.scale_tril_constraint))

    def _covariance_factor(self) -> torch.Tensor:
        return self.scale[..., None] * self.scale_tril

    def get_transform(self, *args: Any, **kwargs: Any) -> Any:
        scale_tril = self._covariance_factor()
        return LowerCholeskyAffine(self.loc, scale_tril)

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        """A multivariate normal over the packed latent."""
        scale_tril = self._covariance_factor()  # read before loc: Pyro's site order
        return MultivariateNormal(self.loc, scale_tril=scale_tril)

    def _loc_scale(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self._covariance_factor().pow(2).sum(-1).sqrt()
        assert scale.shape == self.loc.shape
        return self.loc, scale


class AutoDiagonalNormal(_AutoAffineNormal):
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

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        setattr(self, "scale", PyroParam(self.loc.new_full((self.latent_dim,), self._init_scale), self.scale_constraint))

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
