"""Normalizing-flow posteriors over the packed latent vector (Pyro's flow autoguides).

A standard normal over the unconstrained latent vector is pushed through a learnable
transform (any :class:`~ember.distributions.TransformModule`, e.g. a stack of inverse
autoregressive flows); the flow's parameters register as Ember params on the first call.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.distributions.transforms import Transform

from ember.distributions import Normal
from ember.distributions.transforms import affine_autoregressive, iterated
from ember.infer.autoguide._packing import AutoContinuous
from ember.infer.autoguide.initialization import init_to_feasible

__all__ = ["AutoIAFNormal", "AutoNormalizingFlow"]


class AutoNormalizingFlow(AutoContinuous):
    """A posterior ``T(z)``, ``z ~ N(0, I)`` over the packed unconstrained latent vector.

    :param model: the model; its latent sites must be continuous.
    :param init_transform_fn: builds the flow from the latent size ``latent_dim`` on the first
        call, e.g. ``functools.partial(iterated, 2, block_autoregressive)``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.distributions.transforms import planar, iterated
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    >>> guide = AutoNormalizingFlow(model, functools.partial(iterated, 2, planar))
    >>> guide()["x"].shape
    torch.Size([2])
    """

    def __init__(self, model: Callable[..., Any], init_transform_fn: Callable[[int], Transform]) -> None:
        super().__init__(model, init_loc_fn=init_to_feasible)
        self._init_transform_fn = init_transform_fn
        self.transform: Transform | None = None
        self._prototype_tensor = torch.tensor(0.0)

    def get_base_dist(self) -> Any:
        """A standard normal over the packed latent, on the flow parameters' dtype and device."""
        loc = self._prototype_tensor.new_zeros(1)
        scale = self._prototype_tensor.new_ones(1)
        return Normal(loc, scale).expand([self.latent_dim]).to_event(1)

    def get_transform(self, *args: Any, **kwargs: Any) -> Any:
        """The flow."""
        return self.transform

    def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
        """The flow applied to the base distribution (built on the first call)."""
        if self.transform is None:
            transform = self._init_transform_fn(self.latent_dim)
            self.transform = transform
            # Read through the local name: the attribute would register the flow's params before
            # the prototype, and Pyro's param order has the prototype first.
            if isinstance(transform, torch.nn.Module):
                for parameter in transform.parameters():
                    self._prototype_tensor = parameter  # follow the flow's dtype and device
                    break
        return super().get_posterior(*args, **kwargs)


class AutoIAFNormal(AutoNormalizingFlow):
    """A stack of inverse autoregressive flows (:class:`~ember.distributions.transforms.AffineAutoregressive`).

    :param model: the model; its latent sites must be continuous.
    :param hidden_dim: the hidden sizes of each flow's network (default ``[3 * latent_dim + 1]``).
    :param init_loc_fn: unused; accepted with a :class:`FutureWarning`, as in Pyro.
    :param num_transforms: the number of stacked flows.
    :param init_transform_kwargs: more arguments of
        :func:`~ember.distributions.transforms.affine_autoregressive` (e.g. ``stable=True``).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    >>> guide = AutoIAFNormal(model, num_transforms=2)
    >>> guide()["x"].shape
    torch.Size([2])
    """

    def __init__(
        self,
        model: Callable[..., Any],
        hidden_dim: list[int] | None = None,
        init_loc_fn: Any = None,
        num_transforms: int = 1,
        **init_transform_kwargs: Any,
    ) -> None:
        if init_loc_fn:
            warnings.warn(
                "The `init_loc_fn` argument to AutoIAFNormal is not used in practice. "
                "Please consider removing, as this may be removed in a future release.",
                category=FutureWarning,
                stacklevel=2,
            )
        init_transform_fn = functools.partial(
            iterated, num_transforms, affine_autoregressive, hidden_dims=hidden_dim, **init_transform_kwargs
        )
        super().__init__(model, init_transform_fn=init_transform_fn)
