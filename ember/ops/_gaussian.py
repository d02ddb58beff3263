"""The :class:`Gaussian` class and :func:`gaussian_tensordot` (private; import from :mod:`ember.ops.gaussian`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ember.ops._linalg import broadcast, cholesky, matvec, solve_lower, solve_lower_transposed

__all__ = ["Gaussian", "gaussian_tensordot"]

_LOG_2PI = math.log(2 * math.pi)


class Gaussian:
    """The batched quadratic log density ``-0.5 x.P.x + x.info_vec + log_normalizer``.

    The precision may be singular (a rank-deficient, unnormalized Gaussian), so the mean and
    covariance are not stored. Shapes broadcast: ``log_normalizer`` is ``batch``,
    ``info_vec`` is ``batch + (n,)`` and ``precision`` is ``batch + (n, n)``.

    :param log_normalizer: the log density's constant term.
    :param info_vec: the information vector ``precision @ mean``.
    :param precision: the symmetric positive semidefinite precision matrix.
    :raises ValueError: if the shapes of ``info_vec`` and ``precision`` disagree.

    >>> g = Gaussian(torch.tensor(0.0), torch.tensor([1.0]), torch.tensor([[1.0]]))
    >>> g.log_density(torch.tensor([1.0]))
    tensor(0.5000)
    """

    def __init__(
        self, log_normalizer: torch.Tensor, info_vec: torch.Tensor, precision: torch.Tensor
    ) -> None:
        if info_vec.dim() < 1 or precision.dim() < 2 or precision.shape[-2:] != info_vec.shape[-1:] * 2:
            raise ValueError(
                f"Gaussian: expected info_vec of shape (..., n) and precision of shape "
                f"(..., n, n), got {tuple(info_vec.shape)} and {tuple(precision.shape)}"
            )
        self.log_normalizer = log_normalizer
        self.info_vec = info_vec
        self.precision = precision

    def dim(self) -> int:
        """The number of variables."""
        return self.info_vec.size(-1)

    @property
    def batch_shape(self) -> torch.Size:
        """The broadcast batch shape of the three parameters."""
        return broadcast(
            self.log_normalizer.shape, self.info_vec.shape[:-1], self.precision.shape[:-2]
        )

    def expand(self, batch_shape: Sequence[int]) -> Gaussian:
        """Broadcast to ``batch_shape`` without copying.

        :param batch_shape: the new batch shape.
        """
        shape, n = tuple(batch_shape), self.dim()
        return Gaussian(
            self.log_normalizer.expand(shape),
            self.info_vec.expand(shape + (n,)),
            self.precision.expand(shape + (n, n)),
        )

    def reshape(self, batch_shape: Sequence[int]) -> Gaussian:
        """Reshape the batch dimensions.

        :param batch_shape: the new batch shape, with as many elements as the old one.
        """
        shape, n = tuple(batch_shape), self.dim()
        return Gaussian(
            self.log_normalizer.reshape(shape),
            self.info_vec.reshape(shape + (n,)),
            self.precision.reshape(shape + (n, n)),
        )

    def __getitem__(self, index: tuple[Any, ...]) -> Gaussian:
        """Index the batch dimensions with a tuple index."""
        return Gaussian(
            self.log_normalizer[index],
            self.info_vec[index + (slice(None),)],
            self.precision[index + (slice(None), slice(None))],
        )

    @staticmethod
    def cat(parts: Sequence[Gaussian], dim: int = 0) -> Gaussian:
        """Concatenate Gaussians along a batch dimension.

        :param parts: Gaussians with equal ``dim()`` and matching batch shapes off ``dim``.
        :param dim: the batch dimension (negative counts from the right of the batch shape).
        """
        if dim < 0:
            dim += len(parts[0].batch_shape)
        return Gaussian(
            torch.cat([g.log_normalizer for g in parts], dim=dim),
            torch.cat([g.info_vec for g in parts], dim=dim),
            torch.cat([g.precision for g in parts], dim=dim),
        )

    def event_pad(self, left: int = 0, right: int = 0) -> Gaussian:
        """Add ``left`` and ``right`` variables the density does not depend on.

        :param left: variables to add before the existing ones.
        :param right: variables to add after them.
        """
        pad = (left, right)
        return Gaussian(
            self.log_normalizer, F.pad(self.info_vec, pad), F.pad(self.precision, pad + pad)
        )

    def event_permute(self, perm: torch.Tensor) -> Gaussian:
        """Reorder the variables by the index tensor ``perm``.

        :param perm: a permutation of ``range(dim())``.
        """
        return Gaussian(
            self.log_normalizer, self.info_vec[..., perm], self.precision[..., perm][..., perm, :]
        )

    def __add__(self, other: Gaussian | float | torch.Tensor) -> Gaussian:
        """Add log densities (a Gaussian over the same variables) or a constant."""
        if isinstance(other, Gaussian):
            if other.dim() != self.dim():
                raise ValueError(f"Gaussian: cannot add dims {self.dim()} and {other.dim()}")
            return Gaussian(
                self.log_normalizer + other.log_normalizer,
                self.info_vec + other.info_vec,
                self.precision + other.precision,
            )
        if isinstance(other, (int, float, torch.Tensor)):
            return Gaussian(self.log_normalizer + other, self.info_vec, self.precision)
        raise ValueError(f"Unsupported type: {type(other)}")

    def __sub__(self, other: float | torch.Tensor) -> Gaussian:
        """Subtract a constant from the log density."""
        if isinstance(other, (int, float, torch.Tensor)):
            return Gaussian(self.log_normalizer - other, self.info_vec, self.precision)
        raise ValueError(f"Unsupported type: {type(other)}")

    def log_density(self, value: torch.Tensor) -> torch.Tensor:
        """The log density at ``value``.

        :param value: points with last dimension ``dim()``.
        """
        if value.size(-1) == 0:
            shape = broadcast(value.shape[:-1], self.batch_shape)
            return self.log_normalizer.expand(shape)
        quadratic = (value * (self.info_vec - 0.5 * matvec(self.precision, value))).sum(-1)
        return quadratic + self.log_normalizer

    def rsample(
        self, sample_shape: Sequence[int] = (), noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A reparameterized draw from the normalized density (the precision must be definite).

        :param sample_shape: the shape of independent draws.
        :param noise: standard normal noise of shape ``sample_shape + batch_shape + (dim,)``.
        """
        factor = cholesky(self.precision)
        shape = tuple(sample_shape) + tuple(self.batch_shape) + (self.dim(), 1)
        if noise is None:
            noise = torch.randn(shape, dtype=self.info_vec.dtype, device=self.info_vec.device)
        else:
            noise = noise.reshape(shape)
        # mean + L^-T noise = L^-T (L^-1 info_vec + noise): two triangular solves, not three.
        white_mean = solve_lower(factor, self.info_vec.unsqueeze(-1))
        return solve_lower_transposed(factor, white_mean + noise).squeeze(-1)

    def condition(self, value: torch.Tensor) -> Gaussian:
        """Fix the trailing ``value.size(-1)`` variables to ``value`` (keeping their density).

        ``g.log_density(cat([x, y])) == g.condition(y).log_density(x)``.

        :param value: values of the trailing variables.
        """
        n = self.dim() - value.size(-1)
        if n < 0:
            raise ValueError(f"Gaussian: cannot condition {self.dim()} variables on {value.size(-1)}")
        info_a, info_b = self.info_vec[..., :n], self.info_vec[..., n:]
        p_ab, p_bb = self.precision[..., :n, n:], self.precision[..., n:, n:]
        info_vec = info_a - matvec(p_ab, value)
        log_normalizer = (
            self.log_normalizer + (value * (info_b - 0.5 * matvec(p_bb, value))).sum(-1)
        )
        return Gaussian(log_normalizer, info_vec, self.precision[..., :n, :n])

    def left_condition(self, value: torch.Tensor) -> Gaussian:
        """Fix the leading ``value.size(-1)`` variables to ``value``.

        :param value: values of the leading variables.
        """
        left, n = value.size(-1), self.dim()
        perm = torch.cat(
            [torch.arange(left, n, device=value.device), torch.arange(left, device=value.device)]
        )
        return self.event_permute(perm).condition(value)

    def marginalize(self, left: int = 0, right: int = 0) -> Gaussian:
        """Integrate out the ``left`` leading or the ``right`` trailing variables.

        :param left: how many leading variables to integrate out.
        :param right: how many trailing variables to integrate out.
        :raises NotImplementedError: if both are positive.
        """
        if left == 0 and right == 0:
            return self
        if left > 0 and right > 0:
            raise NotImplementedError("Gaussian.marginalize: give left or right, not both")
        n = self.dim()
        kept = slice(left, n - right)
        gone = slice(None, left) if left else slice(n - right, None)
        factor = cholesky(self.precision[..., gone, gone])
        # One triangular solve whitens the cross terms and the information vector together.
        cross = self.precision[..., gone, kept]
        info_gone = self.info_vec[..., gone].unsqueeze(-1)
        batch = broadcast(cross.shape[:-2], info_gone.shape[:-2])
        rhs = torch.cat(
            [cross.expand(batch + cross.shape[-2:]), info_gone.expand(batch + info_gone.shape[-2:])], -1
        )
        white = solve_lower(factor, rhs)
        cross, whitened = white[..., :-1], white[..., -1:]
        precision = self.precision[..., kept, kept] - cross.mT @ cross
        info_vec = self.info_vec[..., kept] - (cross.mT @ whitened).squeeze(-1)
        log_normalizer = (
            self.log_normalizer
            + 0.5 * (left + right) * _LOG_2PI
            - factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
            + 0.5 * whitened.squeeze(-1).square().sum(-1)
        )
        return Gaussian(log_normalizer, info_vec, precision)

    def event_logsumexp(self) -> torch.Tensor:
        """The log integral over all variables (the precision must be definite)."""
        factor = cholesky(self.precision)
        whitened = solve_lower(factor, self.info_vec.unsqueeze(-1)).squeeze(-1)
        return (
            self.log_normalizer
            + 0.5 * self.dim() * _LOG_2PI
            + 0.5 * whitened.square().sum(-1)
            - factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        )


def gaussian_tensordot(x: Gaussian, y: Gaussian, dims: int = 0) -> Gaussian:
    """Integrate out ``dims`` variables shared by two Gaussians: ``log int exp(x(a, b) + y(b, c)) db``.

    ``x`` is over ``(a, b)`` and ``y`` over ``(b, c)``; the result is over ``(a, c)``.

    :param x: a Gaussian whose trailing ``dims`` variables are ``b``.
    :param y: a Gaussian whose leading ``dims`` variables are ``b``.
    :param dims: the size of ``b``.
    :raises ValueError: if either Gaussian has fewer than ``dims`` variables.

    >>> g = Gaussian(torch.tensor(0.0), torch.zeros(2), torch.tensor([[2.0, -1.0], [-1.0, 1.0]]))
    >>> h = Gaussian(torch.tensor(0.0), torch.zeros(1), torch.ones(1, 1))
    >>> gaussian_tensordot(g, h, 1).precision
    tensor([[1.5000]])
    """
    na, nb, nc = x.dim() - dims, dims, y.dim() - dims
    if min(na, nb, nc) < 0:
        raise ValueError(
            f"gaussian_tensordot: cannot contract {dims} variables of Gaussians with "
            f"{x.dim()} and {y.dim()} variables"
        )
    p_aa, p_ab, p_bb = x.precision[..., :na, :na], x.precision[..., :na, na:], x.precision[..., na:, na:]
    q_bb, q_bc, q_cc = y.precision[..., :nb, :nb], y.precision[..., :nb, nb:], y.precision[..., nb:, nb:]
    info_a, info_b = x.info_vec[..., :na], x.info_vec[..., na:]
    info_b2, info_c = y.info_vec[..., :nb], y.info_vec[..., nb:]
    log_normalizer = x.log_normalizer + y.log_normalizer
    batch = broadcast(x.precision.shape[:-2], y.precision.shape[:-2], x.info_vec.shape[:-1], y.info_vec.shape[:-1])
    if nb == 0:
        precision = x.precision.new_zeros(batch + (na + nc, na + nc))
        info_vec = x.info_vec.new_zeros(batch + (na + nc,))
    else:
        # Complete the square in b: the Schur complement of (P_bb + Q_bb). One triangular
        # solve covers the cross terms and the information vector together.
        factor = cholesky(p_bb + q_bb)
        rhs = torch.cat(
            [
                p_ab.mT.expand(batch + (nb, na)),
                q_bc.expand(batch + (nb, nc)),
                (info_b + info_b2).unsqueeze(-1).expand(batch + (nb, 1)),
            ],
            -1,
        )
        white = solve_lower(factor, rhs)
        white_cross, white_info = white[..., :-1], white[..., -1:]
        precision = -(white_cross.mT @ white_cross)
        info_vec = -(white_cross.mT @ white_info).squeeze(-1)
        log_normalizer = (
            log_normalizer
            + 0.5 * nb * _LOG_2PI
            + 0.5 * white_info.squeeze(-1).square().sum(-1)
            - factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        )
    # The kept variables' own terms, added into the fresh blocks in place (no concatenation).
    precision[..., :na, :na] += p_aa
    precision[..., na:, na:] += q_cc
    info_vec[..., :na] += info_a
    info_vec[..., na:] += info_c
    return Gaussian(log_normalizer, info_vec, precision)
