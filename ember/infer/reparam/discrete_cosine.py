"""The discrete cosine reparameterizer, and the orthonormal DCT-II transform it uses."""

from __future__ import annotations

import math

import torch
from torch.distributions import constraints
from torch.distributions.transforms import Transform

from ember.infer.reparam.unit_jacobian import UnitJacobianReparam

__all__ = ["DiscreteCosineReparam", "DiscreteCosineTransform"]


def _dct_matrix(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``C``, so that ``dct(x) = x @ C.T`` and ``idct(y) = y @ C``."""
    n = torch.arange(size, dtype=dtype, device=device)
    matrix = torch.cos(math.pi / size * (n + 0.5) * n[:, None])
    matrix[0] *= math.sqrt(1.0 / size)
    matrix[1:] *= math.sqrt(2.0 / size)
    return matrix


class DiscreteCosineTransform(Transform):
    """The orthonormal discrete cosine transform of type II along ``dim``; Jacobian one.

    :param dim: the (negative) dim to transform; it and every dim to its right are event dims.
    :param smooth: multiply frequency ``k + 1/2`` by ``(k + 1/2) ** smooth``, rescaled to keep
        the Jacobian determinant one: 0 maps white noise to white noise, 1 maps Brownian
        noise to white noise, -1 violet noise, and so on.
    :param cache_size: 0 or 1, as for every torch transform.

    >>> t = DiscreteCosineTransform()
    >>> x = torch.tensor([1.0, 1.0, 1.0, 1.0])
    >>> t(x).round(decimals=4) + 0.0
    tensor([2., 0., 0., 0.])
    >>> torch.allclose(t.inv(t(x)), x)
    True
    """

    bijective = True

    def __init__(self, dim: int = -1, smooth: float = 0.0, cache_size: int = 0) -> None:
        assert isinstance(dim, int) and dim < 0, f"dim must be a negative int, got {dim!r}"
        self.dim = dim
        self.smooth = float(smooth)
        super().__init__(cache_size=cache_size)
        # torch declares these as class attributes; ours depend on ``dim``.
        self.domain = constraints.independent(constraints.real, -dim)  # type: ignore[no-untyped-call]  # torch's constructor is unannotated
        self.codomain = constraints.independent(constraints.real, -dim)  # type: ignore[no-untyped-call]  # as above

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DiscreteCosineTransform) and (self.dim, self.smooth) == (other.dim, other.smooth)

    def __hash__(self) -> int:
        return hash((type(self), self.dim, self.smooth))

    def with_cache(self, cache_size: int = 1) -> DiscreteCosineTransform:
        if self._cache_size == cache_size:
            return self
        return DiscreteCosineTransform(self.dim, self.smooth, cache_size=cache_size)

    def _weight(self, size: int, like: torch.Tensor) -> torch.Tensor:
        freq = torch.arange(size, dtype=like.dtype, device=like.device) + 0.5
        weight = freq.pow(self.smooth)
        return weight / weight.log().mean().exp()  # geometric mean one: |det J| = 1

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(self.dim, -1)
        y = x @ _dct_matrix(x.size(-1), x.dtype, x.device).T
        if self.smooth:
            y = y * self._weight(y.size(-1), y)
        return y.transpose(self.dim, -1)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        y = y.transpose(self.dim, -1)
        if self.smooth:
            y = y / self._weight(y.size(-1), y)
        x = y @ _dct_matrix(y.size(-1), y.dtype, y.device)
        return x.transpose(self.dim, -1)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[: self.dim])

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        if len(shape) < self.event_dim:
            raise ValueError("Too few dimensions on input")
        return shape

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        if len(shape) < self.event_dim:
            raise ValueError("Too few dimensions on input")
        return shape


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
