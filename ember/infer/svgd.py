"""Stein variational gradient descent (Liu and Wang, 2016), and the Stein kernels it uses.

A set of particles, each a packed unconstrained value of every latent site, moves along the
kernel-smoothed gradient of the log density plus a repulsive term from the kernel's
gradient. The particles live in one param, ``"svgd_particles"``, read by a point-mass guide;
the model's gradient at every particle comes from one vectorized ``Trace_ELBO`` pass.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch.distributions import biject_to

from ember.distributions import Delta
from ember.infer.autoguide import AutoContinuous
from ember.infer.autoguide.initialization import init_to_sample
from ember.infer.trace_elbo import Trace_ELBO
from ember.infer.util import zero_grads
from ember.optim import PyroOptim
from ember.poutine.handlers import trace
from ember.primitives import param, plate

__all__ = ["IMQSteinKernel", "RBFSteinKernel", "SVGD", "SteinKernel", "vectorize"]

Model = Callable[..., Any]


def vectorize(fn: Model, num_particles: int, max_plate_nesting: int) -> Model:
    """``fn`` run inside a ``num_particles_vectorized`` plate left of its ``max_plate_nesting`` plates."""

    def vectorized(*args: Any, **kwargs: Any) -> Any:
        with plate("num_particles_vectorized", num_particles, dim=-max_plate_nesting - 1):
            return fn(*args, **kwargs)

    return vectorized


class _SVGDGuide(AutoContinuous):
    """The particles as a point mass over the packed latent vector (one per particle)."""

    def __init__(self, model: Model) -> None:
        super().__init__(model, init_loc_fn=init_to_sample)

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        particles = param("svgd_particles", self._init_loc)
        return Delta(particles, event_dim=1)


class SteinKernel(ABC):
    """A kernel for :class:`SVGD`, given per dimension so that either SVGD mode can use it."""

    @abstractmethod
    def log_kernel_and_grad(self, particles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The log kernel and its gradient, per pair of particles and per dimension.

        :param particles: an ``(N, D)`` tensor.
        :returns: ``(log_kernel, kernel_grad)``, both ``(N, N, D)``: entry ``(n, m, d)`` of the
            second is minus the derivative of ``log_kernel[n, m, d]`` with respect to
            ``x[m, d]`` (the repulsive direction SVGD descends along).
        """
        raise NotImplementedError


def _median_bandwidth(norm_sq: torch.Tensor, factor: float | None) -> torch.Tensor:
    """Per dimension: the median squared distance over distinct pairs, over ``log(N + 1)``."""
    n = norm_sq.size(0)
    index = torch.arange(n)
    median = norm_sq[index > index.unsqueeze(-1)].median(dim=0).values
    if factor is not None:
        median = factor * median
    return median / math.log(n + 1)


class _BandwidthKernel(SteinKernel):
    def __init__(self, bandwidth_factor: float | None) -> None:
        self.bandwidth_factor = bandwidth_factor

    @property
    def bandwidth_factor(self) -> float | None:
        """The factor the median-heuristic bandwidth is multiplied by (``None``: 1)."""
        return self._bandwidth_factor

    @bandwidth_factor.setter
    def bandwidth_factor(self, bandwidth_factor: float | None) -> None:
        if bandwidth_factor is not None and not bandwidth_factor > 0.0:
            raise AssertionError("bandwidth_factor must be positive.")
        self._bandwidth_factor = bandwidth_factor

    def _differences(self, particles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        delta_x = particles.unsqueeze(0) - particles.unsqueeze(1)  # (N, N, D): x[m] - x[n]
        assert delta_x.dim() == 3
        norm_sq = delta_x.pow(2.0)
        return delta_x, norm_sq, _median_bandwidth(norm_sq, self.bandwidth_factor)


class RBFSteinKernel(_BandwidthKernel):
    """The RBF kernel ``exp(-(x - y)^2 / h)`` per dimension, with the median-heuristic bandwidth ``h``.

    :param bandwidth_factor: a positive factor on the bandwidth (default 1).

    >>> log_k, grad = RBFSteinKernel().log_kernel_and_grad(torch.tensor([[0.0], [1.0], [3.0]]))
    >>> log_k.shape, bool(log_k.diagonal(dim1=0, dim2=1).eq(0).all())
    (torch.Size([3, 3, 1]), True)
    """

    def __init__(self, bandwidth_factor: float | None = None) -> None:
        super().__init__(bandwidth_factor)

    @torch.no_grad()
    def log_kernel_and_grad(self, particles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        delta_x, norm_sq, h = self._differences(particles)
        return -(norm_sq / h), 2.0 * delta_x / h


class IMQSteinKernel(_BandwidthKernel):
    """The inverse multi-quadric kernel ``(alpha + (x - y)^2 / h) ** beta`` per dimension.

    :param alpha: a positive offset (default 0.5).
    :param beta: a negative exponent (default -0.5).
    :param bandwidth_factor: a positive factor on the median-heuristic bandwidth ``h``.

    >>> log_k, _ = IMQSteinKernel(alpha=1.0).log_kernel_and_grad(torch.tensor([[0.0], [2.0]]))
    >>> bool(log_k[0, 0, 0] == 0.0)
    True
    """

    def __init__(self, alpha: float = 0.5, beta: float = -0.5, bandwidth_factor: float | None = None) -> None:
        if not alpha > 0.0:
            raise AssertionError("alpha must be positive.")
        if not beta < 0.0:
            raise AssertionError("beta must be negative.")
        self.alpha = alpha
        self.beta = beta
        super().__init__(bandwidth_factor)

    @torch.no_grad()
    def log_kernel_and_grad(self, particles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        delta_x, norm_sq, h = self._differences(particles)
        base = self.alpha + norm_sq / h
        return self.beta * torch.log(base), (-2.0 * self.beta) * delta_x / h / base


class SVGD:
    """Stein variational gradient descent over the continuous latent sites of ``model``.

    :param model: a fully vectorized model with continuous latent sites only.
    :param kernel: a :class:`SteinKernel`.
    :param optim: an Ember optimizer (:class:`~ember.optim.PyroOptim`).
    :param num_particles: the number of particles, at least 2.
    :param max_plate_nesting: the number of plate dims the model uses.
    :param mode: ``"univariate"`` (a kernel per dimension, as in kernelized complete
        conditional Stein discrepancies) or ``"multivariate"`` (the product kernel of the
        original SVGD).
    :raises AssertionError: on arguments of the wrong kind or out of range (Pyro's type).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("x", dist.Normal(1.0, 1.0))
    >>> ember.clear_param_store()
    >>> svgd = SVGD(model, RBFSteinKernel(), ember.optim.Adam({"lr": 0.1}), num_particles=4, max_plate_nesting=0)
    >>> sorted(svgd.step())
    ['x']
    >>> svgd.get_named_particles()["x"].shape
    torch.Size([4])
    """

    def __init__(
        self,
        model: Model,
        kernel: SteinKernel,
        optim: PyroOptim,
        num_particles: int,
        max_plate_nesting: int,
        mode: str = "univariate",
    ) -> None:
        if not callable(model):
            raise AssertionError(f"model must be callable, got {type(model).__name__}")
        if not isinstance(kernel, SteinKernel):
            raise AssertionError("Must provide a valid SteinKernel")
        if not isinstance(optim, PyroOptim):
            raise AssertionError("Must provide a valid Pyro optimizer")
        if not num_particles > 1:
            raise AssertionError(f"Must use at least two particles, got num_particles={num_particles}")
        if not max_plate_nesting >= 0:
            raise AssertionError(f"max_plate_nesting must be >= 0, got {max_plate_nesting}")
        if mode not in ("univariate", "multivariate"):
            raise AssertionError(f"mode must be one of (univariate, multivariate), got {mode!r}")
        self.model = vectorize(model, num_particles, max_plate_nesting)
        self.kernel = kernel
        self.optim = optim
        self.num_particles = num_particles
        self.max_plate_nesting = max_plate_nesting
        self.mode = mode
        self.loss = Trace_ELBO().differentiable_loss
        self.guide = _SVGDGuide(self.model)

    def get_named_particles(self) -> dict[str, torch.Tensor]:
        """The particles by site name, constrained, each with the particle dim leftmost."""
        particles = param("svgd_particles")
        return {
            packed.name: biject_to(getattr(packed.site["fn"], "support"))(value)
            for packed, value in self.guide._unpack_latent(particles)
        }

    @torch.no_grad()
    def step(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """One SVGD update of the particles; arguments are passed to the model.

        :returns: the mean squared SVGD gradient of each site, to monitor convergence.
        """
        with torch.enable_grad(), trace(param_only=True) as param_capture:
            loss = self.loss(self.model, self.guide, *args, **kwargs)
            torch.autograd.backward(loss)
        particles: torch.Tensor = getattr(param("svgd_particles"), "unconstrained")()
        assert particles.grad is not None
        flat = particles.reshape(self.num_particles, -1)
        # The ELBO's gradient is that of -log p: its negative is the score at each particle.
        flat_grad = particles.grad.reshape(self.num_particles, -1)
        log_kernel, kernel_grad = self.kernel.log_kernel_and_grad(flat)
        if self.mode == "multivariate":
            kernel = log_kernel.sum(-1).exp()
            attractive = kernel @ flat_grad
            repulsive = torch.einsum("nm,nm...->n...", kernel, kernel_grad)
        else:
            kernel = log_kernel.exp()
            attractive = torch.einsum("nmd,md->nd", kernel, flat_grad)
            repulsive = torch.einsum("nmd,nmd->nd", kernel, kernel_grad)
        particles.grad = (attractive + repulsive).reshape(particles.shape) / self.num_particles
        squared = {
            packed.name: value.mean().item() for packed, value in self.guide._unpack_latent(particles.grad.pow(2.0))
        }
        params = {getattr(site["value"], "unconstrained")() for site in param_capture.trace.nodes.values()}
        self.optim(params)
        zero_grads(params)
        return squared
