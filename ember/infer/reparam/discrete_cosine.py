"""The discrete cosine reparameterizer (its transform lives in :mod:`ember.distributions.transforms`)."""

from __future__ import annotations

from ember.distributions.transforms import DiscreteCosineTransform
from ember.infer.reparam.unit_jacobian import UnitJacobianReparam

__all__ = ["DiscreteCosineReparam", "DiscreteCosineTransform"]


class DiscreteCosineReparam(UnitJacobianReparam):
    """Draw a latent site in the frequency domain, through a :class:`DiscreteCosineTransform`.

    For time series whose values are strongly coupled along a time-like dim, the frequency
    components are closer to independent, which suits diagonal guides and mass matrices.
    The new site is named ``<site>_dct``. Meant for latent sites, not for likelihoods.

    :param dim: the (negative) dim along which to transform, counted from the right.
    :param smooth: the smoothing exponent of :class:`DiscreteCosineTransform`: use 1 for
        roughly continuous series, 2 for roughly continuously differentiable ones.
    :param experimental_allow_batch: EXPERIMENTAL: allow ``dim`` to be a batch (plate) dim.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> def model():
    ...     return ember.sample("x", dist.Normal(torch.zeros(5), 1.0).to_event(1))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": DiscreteCosineReparam()})).get_trace()
    >>> tr.nodes["x_dct"]["value"].shape
    torch.Size([5])
    """

    def __init__(self, dim: int = -1, smooth: float = 0.0, *, experimental_allow_batch: bool = False) -> None:
        transform = DiscreteCosineTransform(dim=dim, smooth=smooth, cache_size=1)
        super().__init__(transform, suffix="dct", experimental_allow_batch=experimental_allow_batch)
