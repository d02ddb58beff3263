"""``Trace_MMD``: the ELBO with the KL term replaced by a kernel maximum mean discrepancy (MMD-VAE)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ember.infer.elbo import ELBO, Model, TracePair
from ember.infer.enum import get_importance_trace
from ember.infer.util import check_if_enumerated, is_validation_enabled, torch_item
from ember.poutine.handlers import trace
from ember._util import warn_if_nan

__all__ = ["Trace_MMD"]

Kernel = Callable[..., torch.Tensor]
"""A kernel ``k(X)`` / ``k(X, Z)`` returning the Gram matrix of the rows of ``X`` (and ``Z``);
Pyro's ``pyro.contrib.gp`` kernels are such callables."""


def _compute_mmd(x: torch.Tensor, z: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    """The (biased, V-statistic) squared MMD between the rows of ``x`` and of ``z``."""
    return kernel(x).mean() + kernel(z).mean() - 2 * kernel(x, z).mean()


def _freeze(kernel: Any) -> Kernel:
    if not callable(kernel):
        raise TypeError(f"`kernel` should be a callable kernel k(X, Z=None), got {type(kernel).__name__}")
    if isinstance(kernel, torch.nn.Module):
        # The kernel's hyperparameters are not trained by this objective.
        kernel.requires_grad_(False)
    frozen: Kernel = kernel
    return frozen


class Trace_MMD(ELBO):
    r"""The MMD-VAE objective: expected log likelihood minus a kernel MMD between the aggregate
    posterior and the prior of each latent site.

    .. math:: L = E_{q(z|x)} \log p(x|z) - \lambda\, \mathrm{MMD}_k(q(z), p(z))

    Latent samples of the guide and independent draws of the model's prior (one more model
    run per particle) are flattened per particle; only the particle dim is a batch dim, so
    use many (vectorized) particles. Guide and prior sites must be reparameterized.

    :param kernel: a kernel (any callable ``k(X, Z=None)``, e.g. a ``pyro.contrib.gp`` kernel;
        torch modules get ``requires_grad_(False)``), or a dict of them by latent site name.
    :param mmd_scale: :math:`\lambda`, a float or a dict of floats by latent site name.
    :param num_particles: particles per estimate (default 10).
    :param vectorize_particles: draw all particles at once (default ``True``).
    :raises TypeError: on a kernel that is not callable or an ``mmd_scale`` that is not a number.

    The other options are those of :class:`~ember.infer.elbo.ELBO`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def rbf(x, z=None):
    ...     z = x if z is None else z
    ...     return torch.exp(-0.5 * torch.cdist(x, z) ** 2)
    >>> def model(x):
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0))
    ...     ember.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> guide = lambda x: ember.sample("z", dist.Normal(ember.param("m", torch.tensor(0.0)), 1.0))
    >>> ember.clear_param_store()
    >>> loss = Trace_MMD(kernel=rbf, num_particles=16).differentiable_loss(model, guide, torch.tensor(1.0))
    >>> loss.requires_grad
    True
    """

    def __init__(
        self,
        kernel: Kernel | Mapping[str, Kernel],
        mmd_scale: float | Mapping[str, float] = 1,
        num_particles: int = 10,
        max_plate_nesting: float = float("inf"),
        max_iarange_nesting: float | None = None,
        vectorize_particles: bool = True,
        strict_enumeration_warning: bool = True,
        ignore_jit_warnings: bool = False,
        retain_graph: bool | None = None,
    ) -> None:
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            max_iarange_nesting=max_iarange_nesting,
            vectorize_particles=vectorize_particles,
            strict_enumeration_warning=strict_enumeration_warning,
            ignore_jit_warnings=ignore_jit_warnings,
            retain_graph=retain_graph,
        )
        self._kernel: Mapping[str, Kernel] = {}
        self._mmd_scale: Mapping[str, float] = {}
        self.kernel = kernel
        self.mmd_scale = mmd_scale

    @property
    def kernel(self) -> Mapping[str, Kernel]:
        """The kernel of each latent site."""
        return self._kernel

    @kernel.setter
    def kernel(self, kernel: Kernel | Mapping[str, Kernel]) -> None:
        if isinstance(kernel, Mapping):
            self._kernel = {name: _freeze(k) for name, k in kernel.items()}
        else:
            frozen = _freeze(kernel)
            self._kernel = defaultdict(lambda: frozen)

    @property
    def mmd_scale(self) -> Mapping[str, float]:
        """The MMD weight of each latent site."""
        return self._mmd_scale

    @mmd_scale.setter
    def mmd_scale(self, mmd_scale: float | Mapping[str, float]) -> None:
        if isinstance(mmd_scale, Mapping):
            self._mmd_scale = dict(mmd_scale)
        elif isinstance(mmd_scale, (int, float)):
            value = float(mmd_scale)
            self._mmd_scale = defaultdict(lambda: value)
        else:
            raise TypeError("`mmd_scale` should be either float, or a dict of floats")

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = get_importance_trace("flat", self.max_plate_nesting, model, guide, args, kwargs)
        if is_validation_enabled():
            check_if_enumerated(guide_trace)
        return model_trace, guide_trace

    def _flatten(self, value: torch.Tensor, event_dim: int) -> torch.Tensor:
        """One row per particle (the particle dim moved to the front), all else flattened."""
        if not self.vectorize_particles:
            return value.reshape(1, -1)
        particle_dim = -int(self.max_plate_nesting) - event_dim
        value = value.transpose(-value.dim(), particle_dim)
        return value.reshape(value.shape[0], -1)

    def _differentiable_loss_parts(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """``(expected log likelihood, MMD penalty)``."""
        model_rows: dict[str, list[torch.Tensor]] = defaultdict(list)
        guide_rows: dict[str, list[torch.Tensor]] = defaultdict(list)
        loglikelihood: torch.Tensor | float = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            # Draws of the prior, independent of the guide's.
            prior_model = self._vectorized_num_particles(model) if self.vectorize_particles else model
            prior_trace = trace(prior_model).get_trace(*args, **kwargs)
            particle_loglikelihood: torch.Tensor | float = 0.0
            for name, site in model_trace.nodes.items():
                if site["type"] != "sample":
                    continue
                if name in guide_trace and not site["is_observed"]:
                    guide_site = guide_trace.nodes[name]
                    prior_site = prior_trace.nodes[name]
                    prior_fn: Any = prior_site["fn"]
                    guide_fn: Any = guide_site["fn"]
                    if not prior_fn.has_rsample:
                        raise ValueError(f"Model site {name} is not reparameterizable")
                    if not guide_fn.has_rsample:
                        raise ValueError(f"Guide site {name} is not reparameterizable")
                    model_rows[name].append(self._flatten(prior_site["value"], prior_fn.event_dim))
                    guide_rows[name].append(self._flatten(guide_site["value"], prior_fn.event_dim))
                else:
                    particle_loglikelihood = particle_loglikelihood + site["log_prob_sum"]
            loglikelihood = particle_loglikelihood / self.num_particles + loglikelihood
        penalty: torch.Tensor | float = 0.0
        for name in model_rows:
            divergence = _compute_mmd(torch.cat(model_rows[name]), torch.cat(guide_rows[name]), self._kernel[name])
            penalty = self._mmd_scale[name] * divergence + penalty
        warn_if_nan(loglikelihood, "loglikelihood")
        warn_if_nan(penalty, "penalty")
        return loglikelihood, penalty

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``-E log p(x|z) + MMD penalty``, differentiable when all latents are reparameterized."""
        loglikelihood, penalty = self._differentiable_loss_parts(model, guide, args, kwargs)
        loss = torch.as_tensor(-loglikelihood + penalty)
        warn_if_nan(loss, "loss")
        return loss

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """An estimate of the MMD-VAE loss."""
        return torch_item(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """The MMD-VAE loss; also backpropagates it into the params."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        torch.autograd.backward(loss, retain_graph=self.retain_graph)
        return torch_item(loss)
