"""The orthonormal discrete cosine and Haar transforms (public in :mod:`ember.ops.tensor_utils`)."""

from __future__ import annotations

import math

import torch

__all__ = ["dct", "haar_transform", "idct", "inverse_haar_transform"]

_SQRT_HALF = math.sqrt(0.5)


def _dct_last(x: torch.Tensor) -> torch.Tensor:
    # Makhoul's algorithm: reorder to even samples then reversed odd ones, one FFT, one twiddle.
    size = x.size(-1)
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    spectrum = torch.fft.fft(v, dim=-1)
    k = torch.arange(size, dtype=x.dtype, device=x.device)
    angle = (-math.pi / (2 * size)) * k
    y = spectrum.real * torch.cos(angle) - spectrum.imag * torch.sin(angle)
    scale = torch.full((size,), math.sqrt(2.0 / size), dtype=x.dtype, device=x.device)
    scale[0] = math.sqrt(1.0 / size)
    coefficients: torch.Tensor = y * scale
    return coefficients


def _idct_last(y: torch.Tensor) -> torch.Tensor:
    size = y.size(-1)
    scale = torch.full((size,), math.sqrt(size / 2.0), dtype=y.dtype, device=y.device)
    scale[0] = math.sqrt(float(size))
    y = y * scale
    # V[k] = (Y[k] - i Y[N-k]) exp(i pi k / 2N), with Y[N] = 0.
    reflected = torch.nn.functional.pad(y[..., 1:].flip(-1), (1, 0))
    k = torch.arange(size, dtype=y.dtype, device=y.device)
    angle = (math.pi / (2 * size)) * k
    cos, sin = torch.cos(angle), torch.sin(angle)
    spectrum = torch.complex(y * cos + reflected * sin, y * sin - reflected * cos)
    v: torch.Tensor = torch.fft.ifft(spectrum, dim=-1).real
    half = (size + 1) // 2
    x = torch.empty_like(v)
    x[..., ::2] = v[..., :half]
    x[..., 1::2] = v[..., half:].flip(-1)
    return x


def dct(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The orthonormal discrete cosine transform of type II along ``dim`` (scipy's ``norm="ortho"``).

    :param x: the signal.
    :param dim: the dim to transform.

    >>> dct(torch.tensor([1.0, 1.0, 1.0, 1.0])).round(decimals=4) + 0.0
    tensor([2., 0., 0., 0.])
    """
    return _dct_last(x.movedim(dim, -1)).movedim(-1, dim)


def idct(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The inverse of :func:`dct` (the orthonormal DCT of type III) along ``dim``.

    :param x: the coefficients.
    :param dim: the dim to transform.
    """
    return _idct_last(x.movedim(dim, -1)).movedim(-1, dim)


def haar_transform(x: torch.Tensor) -> torch.Tensor:
    """The orthonormal discrete Haar wavelet transform along the last dim.

    Coarsest coefficients come first; an odd trailing sample at any level is passed through.

    :param x: the signal.
    """
    half = x.size(-1) // 2
    even, odd, rest = x[..., 0 : 2 * half : 2], x[..., 1 : 2 * half : 2], x[..., 2 * half :]
    low = (even + odd) * _SQRT_HALF
    high = (even - odd) * _SQRT_HALF
    if half >= 2:
        low = haar_transform(low)
    return torch.cat([low, high, rest], dim=-1)


def inverse_haar_transform(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`haar_transform` along the last dim.

    :param x: the wavelet coefficients.
    """
    half = x.size(-1) // 2
    low, high, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    if half >= 2:
        low = inverse_haar_transform(low)
    interleaved = torch.stack([(low + high) * _SQRT_HALF, (low - high) * _SQRT_HALF], dim=-1)
    return torch.cat([interleaved.flatten(-2), rest], dim=-1)
