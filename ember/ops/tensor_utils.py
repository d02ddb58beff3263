"""Tensor helpers (Pyro's ``pyro.ops.tensor_utils``): orthonormal DCT and Haar transforms,
block-diagonal packing, periodic series features, FFT convolution and small linear algebra
shortcuts that treat ``1 x 1`` matrices as scalars.

>>> x = torch.tensor([1.0, 2.0, 3.0, 4.0])
>>> torch.allclose(idct(dct(x)), x), torch.allclose(inverse_haar_transform(haar_transform(x)), x)
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.fft import irfft as irfft
from torch.fft import rfft as rfft

from ember.ops._spectral import dct as dct
from ember.ops._spectral import haar_transform as haar_transform
from ember.ops._spectral import idct as idct
from ember.ops._spectral import inverse_haar_transform as inverse_haar_transform

__all__ = [
    "CHOLESKY_RELATIVE_JITTER",
    "as_complex",
    "block_diag_embed",
    "block_diagonal",
    "broadcast_tensors_without_dim",
    "cholesky_solve",
    "convolve",
    "dct",
    "haar_transform",
    "idct",
    "inverse_haar_transform",
    "irfft",
    "matmul",
    "matvecmul",
    "next_fast_len",
    "periodic_cumsum",
    "periodic_features",
    "periodic_repeat",
    "precision_to_scale_tril",
    "repeated_matmul",
    "rfft",
    "safe_cholesky",
    "safe_normalize",
    "triangular_solve",
]

#: Jitter added to the diagonal by :func:`safe_cholesky`, in units of the dtype's machine epsilon
#: times the largest absolute entry of each row.
CHOLESKY_RELATIVE_JITTER = 4.0

def as_complex(x: torch.Tensor) -> torch.Tensor:
    """View a ``(..., 2)`` real tensor as complex, copying when the strides forbid a view.

    :param x: a real tensor whose last dim has size 2 (real and imaginary parts).
    """
    if any(stride % 2 for stride in x.stride()[:-1]):
        x = x.clone(memory_format=torch.contiguous_format)
    return torch.view_as_complex(x)


def block_diag_embed(mat: torch.Tensor) -> torch.Tensor:
    """Turn a ``(..., B, M, N)`` stack of blocks into a ``(..., B*M, B*N)`` block-diagonal matrix.

    :param mat: a tensor with at least three dims.

    >>> block_diag_embed(torch.ones(2, 1, 1))
    tensor([[1., 0.],
            [0., 1.]])
    """
    assert mat.dim() > 2, "Input to block_diag() must be of dimension 3 or higher"
    blocks, rows, cols = mat.shape[-3:]
    eye = torch.eye(blocks, dtype=mat.dtype, device=mat.device).reshape(blocks, 1, blocks, 1)
    return (mat.unsqueeze(-2) * eye).reshape(mat.shape[:-3] + (blocks * rows, blocks * cols))


def block_diagonal(mat: torch.Tensor, block_size: int) -> torch.Tensor:
    """Extract the ``block_size`` diagonal blocks of a ``(..., B*M, B*N)`` matrix as ``(..., B, M, N)``.

    :param mat: a block-diagonal matrix (off-diagonal blocks are ignored).
    :param block_size: the number of blocks ``B``.
    """
    rows, cols = mat.size(-2) // block_size, mat.size(-1) // block_size
    assert mat.shape[-2:] == (block_size * rows, block_size * cols)
    blocks = mat.reshape(mat.shape[:-2] + (block_size, rows, block_size, cols)).transpose(-2, -3)
    index = torch.arange(block_size, device=mat.device)
    return blocks[..., index, index, :, :]


def periodic_repeat(tensor: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Tile a one-period tensor along ``dim`` and truncate it to length ``size`` (static seasonality).

    :param tensor: one period of values.
    :param size: the length of the result along ``dim``.
    :param dim: the dim to repeat along.

    >>> periodic_repeat(torch.tensor([1, 2, 3]), 5, 0)
    tensor([1, 2, 3, 1, 2])
    """
    assert isinstance(size, int) and size >= 0
    assert isinstance(dim, int)
    if dim >= 0:
        dim -= tensor.dim()
    period = tensor.size(dim)
    repeats = [1] * tensor.dim()
    repeats[dim] = -(-size // period)
    return tensor.repeat(*repeats).narrow(dim, 0, size)


def periodic_cumsum(tensor: torch.Tensor, period: int, dim: int) -> torch.Tensor:
    """Cumulative sum with lag ``period`` along ``dim``: ``result[t] = tensor[t] + result[t - period]``.

    :param tensor: the increments.
    :param period: the lag.
    :param dim: the time dim.

    >>> periodic_cumsum(torch.tensor([1, 2, 3, 4, 5]), 2, 0)
    tensor([1, 2, 4, 6, 9])
    """
    assert isinstance(period, int) and period > 0
    assert isinstance(dim, int)
    if dim >= 0:
        dim -= tensor.dim()
    size = tensor.size(dim)
    repeats = -(-size // period)
    padding = repeats * period - size
    if padding:
        tensor = torch.nn.functional.pad(tensor, (0, 0) * (-1 - dim) + (0, padding))
    position = tensor.dim() + dim
    shape = tensor.shape[:position] + (repeats, period) + tensor.shape[position + 1 :]
    result = tensor.reshape(shape).cumsum(dim=dim - 1).reshape(tensor.shape)
    return result.narrow(dim, 0, size)


def periodic_features(
    duration: int,
    max_period: float | None = None,
    min_period: float | None = None,
    **options: object,
) -> torch.Tensor:
    """Cosine and sine features of periods from ``max_period`` down to (but excluding) ``min_period``.

    :param duration: the number of time steps.
    :param max_period: the longest period (default ``duration``).
    :param min_period: the exclusive shortest period (default 2, the Nyquist limit).
    :param options: tensor options such as ``dtype`` and ``device``.
    :returns: a ``(duration, 2 * ceil(max_period / min_period) - 2)`` tensor in ``[-1, 1]``.
    """
    assert isinstance(duration, int) and duration >= 0
    if max_period is None:
        max_period = duration
    if min_period is None:
        min_period = 2
    assert 2 <= min_period, "min_period is below Nyquist cutoff"
    assert min_period <= max_period
    time = torch.arange(float(duration), **options).reshape(-1, 1, 1)  # type: ignore[call-overload]  # options are tensor kwargs
    phase = torch.tensor([0.0, math.pi / 2], **options).unsqueeze(-1)  # type: ignore[arg-type]  # as above
    freq = torch.arange(1, max_period / min_period, **options) * (2 * math.pi / max_period)  # type: ignore[call-overload]  # as above
    features: torch.Tensor = (freq * time + phase).cos().reshape(duration, -1).contiguous()
    return features


_NEXT_FAST_LEN: dict[int, int] = {}


def next_fast_len(size: int) -> int:
    """The smallest ``n >= size`` whose prime factors are 2, 3 and 5 (a fast FFT length).

    :param size: a positive int.

    >>> next_fast_len(7), next_fast_len(11)
    (8, 12)
    """
    cached = _NEXT_FAST_LEN.get(size)
    if cached is not None:
        return cached
    assert isinstance(size, int) and size > 0
    candidate = size
    while True:
        remaining = candidate
        for factor in (2, 3, 5):
            while remaining % factor == 0:
                remaining //= factor
        if remaining == 1:
            _NEXT_FAST_LEN[size] = candidate
            return candidate
        candidate += 1


def convolve(signal: torch.Tensor, kernel: torch.Tensor, mode: str = "full") -> torch.Tensor:
    """1-d convolution along the last dim by FFT, broadcasting the other dims.

    :param signal: the signal, of length ``m``.
    :param kernel: the kernel, of length ``n``.
    :param mode: ``"full"`` (length ``m + n - 1``), ``"valid"`` (``max - min + 1``) or
        ``"same"`` (``max(m, n)``).
    :raises ValueError: for another mode.

    >>> convolve(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 2.0])).round()
    tensor([1., 3., 2.])
    """
    m, n = signal.size(-1), kernel.size(-1)
    if mode == "full":
        truncate = m + n - 1
    elif mode == "valid":
        truncate = max(m, n) - min(m, n) + 1
    elif mode == "same":
        truncate = max(m, n)
    else:
        raise ValueError(f"Unknown mode: {mode}")
    padded = m + n - 1
    fast = next_fast_len(padded)
    result: torch.Tensor = irfft(rfft(signal, n=fast) * rfft(kernel, n=fast), n=fast)
    start = (padded - truncate) // 2
    return result[..., start : start + truncate]


def repeated_matmul(M: torch.Tensor, n: int) -> torch.Tensor:
    """Stack the powers ``M, M^2, ..., M^n`` of a batch of square matrices (log-depth doubling).

    :param M: a ``(..., N, N)`` tensor.
    :param n: the highest power, at least 1.
    :returns: a ``(n, ..., N, N)`` tensor.
    """
    assert M.size(-1) == M.size(-2), "Input tensors must satisfy M.size(-1) == M.size(-2)."
    assert n > 0, "argument n to repeated_matmul must be 1 or larger"
    powers = M.unsqueeze(0)
    while powers.size(0) < n:
        powers = torch.cat([powers, torch.matmul(powers[-1:], powers)])
    return powers[:n]


def safe_cholesky(x: torch.Tensor) -> torch.Tensor:
    """The Cholesky factor of ``x`` after a small relative jitter on the diagonal.

    :param x: a batch of symmetric positive (semi)definite matrices.
    """
    if x.size(-1) == 1:
        if CHOLESKY_RELATIVE_JITTER:
            x = x.clamp(min=torch.finfo(x.dtype).tiny)
        return x.sqrt()
    if CHOLESKY_RELATIVE_JITTER:
        jitter = CHOLESKY_RELATIVE_JITTER * torch.finfo(x.dtype).eps * x.detach().abs().amax(-1)
        x = x + torch.diag_embed(jitter)
    factor: torch.Tensor = torch.linalg.cholesky(x)
    return factor


def cholesky_solve(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Solve ``(y y^T) z = x`` for ``z`` given the Cholesky factor ``y``; scalar when ``1 x 1``.

    :param x: the right-hand side.
    :param y: a lower Cholesky factor.
    """
    if y.size(-1) == 1:
        return x / (y * y)
    return x.cholesky_solve(y)


def matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x @ y``, as an elementwise product when the inner size is 1.

    :param x: the left factor.
    :param y: the right factor.
    """
    if x.size(-1) == 1:
        return x.mul(y)
    return x.matmul(y)


def matvecmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The matrix-vector product ``x @ y``, as a product when the inner size is 1.

    :param x: a batch of matrices.
    :param y: a batch of vectors.
    """
    if x.size(-1) == 1:
        return x.squeeze(-1).mul(y)
    return x.matmul(y.unsqueeze(-1)).squeeze(-1)


def triangular_solve(x: torch.Tensor, y: torch.Tensor, upper: bool = False, transpose: bool = False) -> torch.Tensor:
    """Solve ``y z = x`` (or ``y^T z = x``) for a triangular ``y``; a division when ``1 x 1``.

    :param x: the right-hand side.
    :param y: a triangular matrix.
    :param upper: whether ``y`` is upper triangular.
    :param transpose: solve with ``y^T``.
    """
    if y.size(-1) == 1:
        return x / y
    if transpose:
        y = y.mT
        upper = not upper
    solved: torch.Tensor = torch.linalg.solve_triangular(y, x, upper=upper)
    return solved


def precision_to_scale_tril(P: torch.Tensor) -> torch.Tensor:
    """The lower Cholesky factor of ``P^{-1}``, without forming the inverse.

    :param P: a batch of positive definite precision matrices.

    >>> P = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    >>> L = precision_to_scale_tril(P)
    >>> torch.allclose(L @ L.T, torch.linalg.inv(P))
    True
    """
    # If J P J = U^T U with J the flip, then P^{-1} = (J U^{-1} J)(J U^{-1} J)^T with a lower factor.
    flipped_factor = torch.linalg.cholesky(torch.flip(P, (-2, -1)))
    inverse_factor = torch.flip(flipped_factor, (-2, -1)).mT
    eye = torch.eye(P.size(-1), dtype=P.dtype, device=P.device)
    scale_tril: torch.Tensor = torch.linalg.solve_triangular(inverse_factor, eye, upper=False)
    return scale_tril


def safe_normalize(x: torch.Tensor, *, p: float = 2) -> torch.Tensor:
    """Project vectors along the last dimension onto the unit ``p``-norm sphere.

    The zero vector, where the projection is undefined, maps to ``[1, 0, ..., 0]``.

    :param x: a tensor whose last dimension holds the vectors.
    :param p: the norm's exponent (non-negative), 2 for the Euclidean norm.
    :raises ValueError: if ``p`` is negative.

    >>> safe_normalize(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [1.0000, 0.0000]])
    """
    if p < 0:
        raise ValueError(f"safe_normalize expects p >= 0, got p={p}")
    norm = torch.linalg.vector_norm(x, ord=p, dim=-1, keepdim=True)
    y = x / norm.clamp(min=torch.finfo(x.dtype).tiny)
    # The fix-up is written through .data so that gradients at zero stay those of x / tiny.
    zero = y.data.eq(0).all(dim=-1)
    y.data[..., 0][zero] = 1
    result: torch.Tensor = y
    return result

def broadcast_tensors_without_dim(tensors: Sequence[torch.Tensor], dim: int) -> list[torch.Tensor]:
    """Broadcast tensors against each other in every dim but ``dim``, so they can be concatenated.

    :param tensors: the tensors.
    :param dim: the dim left alone (negative if the tensors differ in rank).
    :raises ValueError: for a nonnegative ``dim`` on tensors of different ranks.
    """
    if dim >= 0 and len({t.dim() for t in tensors}) > 1:
        raise ValueError("Dimension dim must be negative for different dimension tensors")
    shapes = [list(t.shape) for t in tensors]
    for shape in shapes:
        shape[dim] = 1
    common = list(torch.broadcast_shapes(*shapes))  # type: ignore[no-untyped-call]  # torch: unannotated
    result = []
    for t in tensors:
        target = list(common)
        target[dim] = t.shape[dim]
        result.append(t.expand(target))
    return result
