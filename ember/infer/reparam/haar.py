"""The Haar wavelet reparameterizer (its transform lives in :mod:`ember.distributions.transforms`)."""

from __future__ import annotations

from ember.distributions.transforms import HaarTransform
from ember.infer.reparam.unit_jacobian import UnitJacobianReparam

__all__ = ["HaarReparam"]


class HaarReparam(UnitJacobianReparam):
    """Draw a latent site in the Haar wavelet domain, through a :class:`HaarTransform`.

    For sequential models whose coupling along a time-like dim (a banded precision matrix)
    makes long-range correlations, the wavelet coefficients are closer to independent, which
    suits diagonal guides and mass matrices. The new site is named ``<site>_haar``. Meant for
    latent sites, not for likelihoods.

    :param dim: the (negative) dim along which to transform, counted from the right.
    :param flip: reverse the series before transforming.
    :param experimental_allow_batch: EXPERIMENTAL: allow ``dim`` to be a batch (plate) dim;
        it and every batch dim to its right become event dims of the new site.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> def model():
    ...     return ember.sample("x", dist.Normal(torch.zeros(4), 1.0).to_event(1))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": HaarReparam()})).get_trace()
    >>> tr.nodes["x_haar"]["value"].shape
    torch.Size([4])
    """

    def __init__(self, dim: int = -1, flip: bool = False, *, experimental_allow_batch: bool = False) -> None:
        transform = HaarTransform(dim=dim, flip=flip, cache_size=1)
        super().__init__(transform, suffix="haar", experimental_allow_batch=experimental_allow_batch)
