"""Gaussians whose precision is scaled by a Gamma-distributed variable, for :class:`GammaGaussianHMM`.

A :class:`GammaGaussian` is the joint log density over ``x`` and a positive scale ``s``::

    alpha * log(s) + s * (-0.5 x.P.x + x.info_vec - beta) + log_normalizer

so that given ``s``, ``x`` is Gaussian with precision ``s * P``, and integrating ``x`` out
leaves a :class:`Gamma` in ``s``. It supports the same algebra as
:class:`~ember.ops.gaussian.Gaussian`.

>>> import ember.distributions as dist
>>> g = gamma_and_mvn_to_gamma_gaussian(
...     dist.Gamma(torch.tensor(2.0), torch.tensor(1.0)),
...     dist.MultivariateNormal(torch.zeros(2), torch.eye(2)))
>>> abs(float(g.event_logsumexp().logsumexp())) < 1e-6  # a normalized joint integrates to one
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ember.ops._linalg import broadcast, matvec

if TYPE_CHECKING:
    from ember.distributions.multivariate_studentt import MultivariateStudentT

__all__ = [
    "Gamma",
    "GammaGaussian",
    "gamma_and_mvn_to_gamma_gaussian",
    "gamma_gaussian_tensordot",
    "matrix_and_mvn_to_gamma_gaussian",
    "scale_mvn",
    "sequential_gamma_gaussian_tensordot",
]

_LOG_2PI = math.log(2 * math.pi)


class Gamma:
    """The unnormalized Gamma log density ``(concentration - 1) log s - rate * s + log_normalizer``.

    :param log_normalizer: the constant term.
    :param concentration: the shape parameter.
    :param rate: the rate parameter.
    """

    def __init__(
        self, log_normalizer: torch.Tensor, concentration: torch.Tensor, rate: torch.Tensor
    ) -> None:
        self.log_normalizer = log_normalizer
        self.concentration = concentration
        self.rate = rate

    def log_density(self, s: torch.Tensor) -> torch.Tensor:
        """The log density at ``s``.

        :param s: positive values.
        """
        return self.log_normalizer + (self.concentration - 1) * s.log() - self.rate * s

    def logsumexp(self) -> torch.Tensor:
        """The log integral over ``s``."""
        return (
            self.log_normalizer
            + torch.lgamma(self.concentration)
            - self.concentration * self.rate.log()
        )


class GammaGaussian:
    """The joint log density over ``(x, s)`` described in the module docstring.

    :param log_normalizer: the constant term, shape ``batch``.
    :param info_vec: the information vector, shape ``batch + (n,)``.
    :param precision: the precision at ``s = 1``, shape ``batch + (n, n)``.
    :param alpha: the coefficient of ``log s`` (``concentration + n / 2 - 1`` of the marginal).
    :param beta: the coefficient of ``-s`` beyond the quadratic form.
    :raises ValueError: if the shapes of ``info_vec`` and ``precision`` disagree.
    """

    def __init__(
        self,
        log_normalizer: torch.Tensor,
        info_vec: torch.Tensor,
        precision: torch.Tensor,
        alpha: torch.Tensor,
        beta: torch.Tensor,
    ) -> None:
        if info_vec.dim() < 1 or precision.dim() < 2 or precision.shape[-2:] != info_vec.shape[-1:] * 2:
            raise ValueError(
                f"GammaGaussian: expected info_vec of shape (..., n) and precision of shape "
                f"(..., n, n), got {tuple(info_vec.shape)} and {tuple(precision.shape)}"
            )
        self.log_normalizer = log_normalizer
        self.info_vec = info_vec
        self.precision = precision
        self.alpha = alpha
        self.beta = beta

    def _parts(self) -> tuple[torch.Tensor, ...]:
        return self.log_normalizer, self.info_vec, self.precision, self.alpha, self.beta

    def dim(self) -> int:
        """The number of Gaussian variables."""
        return self.info_vec.size(-1)

    @property
    def batch_shape(self) -> torch.Size:
        """The broadcast batch shape of the parameters."""
        return broadcast(
            self.log_normalizer.shape,
            self.info_vec.shape[:-1],
            self.precision.shape[:-2],
            self.alpha.shape,
            self.beta.shape,
        )

    def _map(self, fn: Any) -> GammaGaussian:
        """Apply ``fn(tensor, event_dims)`` to each parameter."""
        return GammaGaussian(*(fn(t, k) for t, k in zip(self._parts(), (0, 1, 2, 0, 0))))

    def expand(self, batch_shape: Sequence[int]) -> GammaGaussian:
        """Broadcast to ``batch_shape``.

        :param batch_shape: the new batch shape.
        """
        shape = tuple(batch_shape)
        return self._map(lambda t, k: t.expand(shape + t.shape[t.dim() - k :]))

    def reshape(self, batch_shape: Sequence[int]) -> GammaGaussian:
        """Reshape the batch dimensions.

        :param batch_shape: the new batch shape.
        """
        shape = tuple(batch_shape)
        return self._map(lambda t, k: t.reshape(shape + t.shape[t.dim() - k :]))

    def __getitem__(self, index: tuple[Any, ...]) -> GammaGaussian:
        """Index the batch dimensions with a tuple index."""
        return self._map(lambda t, k: t[index + (slice(None),) * k])

    @staticmethod
    def cat(parts: Sequence[GammaGaussian], dim: int = 0) -> GammaGaussian:
        """Concatenate along a batch dimension.

        :param parts: GammaGaussians with equal ``dim()``.
        :param dim: the batch dimension.
        """
        if dim < 0:
            dim += len(parts[0].batch_shape)
        return GammaGaussian(*(torch.cat(ts, dim=dim) for ts in zip(*(g._parts() for g in parts))))

    def event_pad(self, left: int = 0, right: int = 0) -> GammaGaussian:
        """Add variables the density does not depend on.

        :param left: variables to add before.
        :param right: variables to add after.
        """
        pad = (left, right)
        return GammaGaussian(
            self.log_normalizer, F.pad(self.info_vec, pad), F.pad(self.precision, pad + pad),
            self.alpha, self.beta,
        )

    def event_permute(self, perm: torch.Tensor) -> GammaGaussian:
        """Reorder the Gaussian variables.

        :param perm: a permutation of ``range(dim())``.
        """
        return GammaGaussian(
            self.log_normalizer, self.info_vec[..., perm], self.precision[..., perm][..., perm, :],
            self.alpha, self.beta,
        )

    def __add__(self, other: GammaGaussian) -> GammaGaussian:
        """Add log densities over the same variables."""
        if not isinstance(other, GammaGaussian) or other.dim() != self.dim():
            raise ValueError(f"GammaGaussian: cannot add {other!r}")
        return GammaGaussian(*(a + b for a, b in zip(self._parts(), other._parts())))

    def log_density(self, value: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The joint log density at ``(value, s)``.

        :param value: Gaussian variables, last dimension ``dim()``.
        :param s: the positive scale.
        """
        if value.size(-1) == 0:
            quadratic = torch.zeros((), dtype=s.dtype, device=s.device)
        else:
            quadratic = (value * (self.info_vec - 0.5 * matvec(self.precision, value))).sum(-1)
        return self.alpha * s.log() + (quadratic - self.beta) * s + self.log_normalizer

    def condition(self, value: torch.Tensor) -> GammaGaussian:
        """Fix the trailing ``value.size(-1)`` Gaussian variables.

        :param value: values of the trailing variables.
        """
        n = self.dim() - value.size(-1)
        info_a, info_b = self.info_vec[..., :n], self.info_vec[..., n:]
        p_ab, p_bb = self.precision[..., :n, n:], self.precision[..., n:, n:]
        beta = self.beta - (value * (info_b - 0.5 * matvec(p_bb, value))).sum(-1)
        return GammaGaussian(
            self.log_normalizer, info_a - matvec(p_ab, value), self.precision[..., :n, :n],
            self.alpha, beta,
        )

    def marginalize(self, left: int = 0, right: int = 0) -> GammaGaussian:
        """Integrate out leading or trailing Gaussian variables (``s`` stays).

        :param left: leading variables to integrate out.
        :param right: trailing variables to integrate out.
        :raises NotImplementedError: if both are positive.
        """
        if left == 0 and right == 0:
            return self
        if left > 0 and right > 0:
            raise NotImplementedError("GammaGaussian.marginalize: give left or right, not both")
        n = self.dim()
        gone_n = left + right
        kept = slice(left, n - right)
        gone = slice(None, left) if left else slice(n - right, None)
        factor = torch.linalg.cholesky(self.precision[..., gone, gone])
        cross = torch.linalg.solve_triangular(factor, self.precision[..., gone, kept], upper=False)
        whitened = torch.linalg.solve_triangular(
            factor, self.info_vec[..., gone].unsqueeze(-1), upper=False
        )
        info_vec = self.info_vec[..., kept]
        if gone_n < n:
            info_vec = info_vec - (cross.mT @ whitened).squeeze(-1)
        log_normalizer = (
            self.log_normalizer
            + 0.5 * gone_n * _LOG_2PI
            - factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        )
        return GammaGaussian(
            log_normalizer,
            info_vec,
            self.precision[..., kept, kept] - cross.mT @ cross,
            self.alpha - 0.5 * gone_n,
            self.beta - 0.5 * whitened.squeeze(-1).square().sum(-1),
        )

    def event_logsumexp(self) -> Gamma:
        """Integrate out all Gaussian variables, leaving a :class:`Gamma` density in ``s``."""
        n = self.dim()
        factor = torch.linalg.cholesky(self.precision)
        whitened = torch.linalg.solve_triangular(
            factor, self.info_vec.unsqueeze(-1), upper=False
        ).squeeze(-1)
        log_normalizer = (
            self.log_normalizer
            + 0.5 * n * _LOG_2PI
            - factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        )
        return Gamma(
            log_normalizer, self.alpha - 0.5 * n + 1, self.beta - 0.5 * whitened.square().sum(-1)
        )


    def compound(self) -> MultivariateStudentT:
        """Integrate out ``s``: the multivariate Student-t distribution of ``x``.

        The density in ``x`` is proportional to ``(beta' + q(x) / 2) ** -(alpha + 1)`` with
        ``q(x) = (x - m)^T P (x - m)``, ``m = P^{-1} info_vec`` and
        ``beta' = beta - info_vec . m / 2``: a Student-t with ``df = 2 alpha + 2 - n``, location
        ``m`` and covariance factor ``(2 beta' / df) P^{-1}``. (The constant term is not part of a
        distribution, as in Pyro.)
        """
        from ember.distributions.multivariate_studentt import MultivariateStudentT  # see pyproject: ops below distributions

        n = self.dim()
        factor = torch.linalg.cholesky(self.precision)
        loc = torch.cholesky_solve(self.info_vec.unsqueeze(-1), factor).squeeze(-1)
        df = 2.0 * self.alpha + 2.0 - n
        beta = self.beta - 0.5 * (self.info_vec * loc).sum(-1)
        scale = (2.0 * beta / df).sqrt()  # NaN where beta' < 0: no proper density there
        scale_tril = torch.linalg.cholesky(torch.cholesky_inverse(factor)) * scale[..., None, None]
        return MultivariateStudentT(df, loc, scale_tril)


def gamma_and_mvn_to_gamma_gaussian(gamma: Any, mvn: Any) -> GammaGaussian:
    """The joint of ``s ~ gamma`` and ``x | s ~ MVN(loc, precision * s)``.

    :param gamma: a ``Gamma`` distribution.
    :param mvn: a ``MultivariateNormal``, the conditional at ``s = 1``.
    :raises ValueError: for other distribution types.
    """
    if not isinstance(gamma, torch.distributions.Gamma) or not isinstance(
        mvn, torch.distributions.MultivariateNormal
    ):
        raise ValueError(
            "gamma_and_mvn_to_gamma_gaussian: expected a Gamma and a MultivariateNormal, "
            f"got {type(gamma).__name__} and {type(mvn).__name__}"
        )
    n = mvn.loc.size(-1)
    precision = mvn.precision_matrix
    info_vec = matvec(precision, mvn.loc)
    gaussian_log_integral = 0.5 * n * _LOG_2PI + mvn.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    log_normalizer = -Gamma(gaussian_log_integral, gamma.concentration, gamma.rate).logsumexp()
    return GammaGaussian(
        log_normalizer,
        info_vec,
        precision,
        gamma.concentration + (0.5 * n - 1),
        gamma.rate + 0.5 * (info_vec * mvn.loc).sum(-1),
    )


def scale_mvn(mvn: Any, s: torch.Tensor) -> torch.distributions.MultivariateNormal:
    """``MVN(loc, precision * s)`` from ``mvn = MVN(loc, precision)``.

    :param mvn: a ``MultivariateNormal``.
    :param s: the positive precision scale, broadcastable to the batch shape.
    """
    batch = broadcast(s.shape, mvn.batch_shape)
    loc = mvn.loc.expand(batch + (-1,))
    return torch.distributions.MultivariateNormal(
        loc, scale_tril=mvn.scale_tril / s.sqrt().unsqueeze(-1).unsqueeze(-1)
    )


def matrix_and_mvn_to_gamma_gaussian(matrix: torch.Tensor, mvn: Any) -> GammaGaussian:
    """The map ``y = x @ matrix + noise``, ``noise ~ scale_mvn(mvn, s)``, over ``(x, y)`` and ``s``.

    :param matrix: the ``(x_dim, y_dim)`` transformation.
    :param mvn: a ``MultivariateNormal`` with event ``(y_dim,)``.
    :raises ValueError: if the distribution or shapes do not fit.
    """
    x_dim, y_dim = matrix.shape[-2:]
    if not isinstance(mvn, torch.distributions.MultivariateNormal) or mvn.event_shape != (y_dim,):
        raise ValueError(
            f"matrix_and_mvn_to_gamma_gaussian: matrix of shape {tuple(matrix.shape)} needs a "
            f"MultivariateNormal of event shape ({y_dim},), got {mvn!r}"
        )
    batch = broadcast(matrix.shape[:-2], mvn.batch_shape)
    matrix = matrix.expand(batch + (x_dim, y_dim))
    mvn = mvn.expand(batch)  # type: ignore[no-untyped-call]  # torch: unannotated
    p_yy = mvn.precision_matrix
    p_xy = -(matrix @ p_yy)
    precision = torch.cat(
        [torch.cat([-(p_xy @ matrix.mT), p_xy], -1), torch.cat([p_xy.mT, p_yy], -1)], -2
    )
    info_y = matvec(p_yy, mvn.loc)
    info_vec = torch.cat([-matvec(matrix, info_y), info_y], -1)
    log_normalizer = -0.5 * y_dim * _LOG_2PI - mvn.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    beta = 0.5 * (info_y * mvn.loc).sum(-1)
    return GammaGaussian(log_normalizer, info_vec, precision, torch.full_like(beta, 0.5 * y_dim), beta)


def gamma_gaussian_tensordot(x: GammaGaussian, y: GammaGaussian, dims: int = 0) -> GammaGaussian:
    """Integrate out ``dims`` shared Gaussian variables: ``log int exp(x(a, b, s) + y(b, c, s)) db``.

    :param x: over ``(a, b)``.
    :param y: over ``(b, c)``.
    :param dims: the size of ``b``.
    :raises ValueError: if either has fewer than ``dims`` variables.
    """
    na, nb, nc = x.dim() - dims, dims, y.dim() - dims
    if min(na, nb, nc) < 0:
        raise ValueError(
            f"gamma_gaussian_tensordot: cannot contract {dims} variables of GammaGaussians "
            f"with {x.dim()} and {y.dim()} variables"
        )
    device = x.info_vec.device
    perm = torch.cat(
        [torch.arange(na, device=device), torch.arange(x.dim(), x.dim() + nc, device=device),
         torch.arange(na, x.dim(), device=device)]
    )
    joint = x.event_pad(right=nc) + y.event_pad(left=na)
    return joint.event_permute(perm).marginalize(right=nb)


def sequential_gamma_gaussian_tensordot(gamma_gaussian: GammaGaussian) -> GammaGaussian:
    """Chain transition factors along the rightmost batch dim by parallel scan.

    :param gamma_gaussian: factors over ``(z_prev, z_next)`` with an even ``dim()``.
    :raises ValueError: if ``dim()`` is odd.
    """
    if gamma_gaussian.dim() % 2:
        raise ValueError(f"sequential_gamma_gaussian_tensordot: dim is not even: {gamma_gaussian.dim()}")
    g = gamma_gaussian.expand(gamma_gaussian.batch_shape)
    batch = g.batch_shape[:-1]
    state = g.dim() // 2
    while g.batch_shape[-1] > 1:
        time = g.batch_shape[-1]
        even = time // 2 * 2
        pairs = g[..., :even].reshape(batch + (even // 2, 2))
        contracted = gamma_gaussian_tensordot(pairs[..., 0], pairs[..., 1], state)
        if time > even:
            contracted = GammaGaussian.cat((contracted, g[..., -1:]), dim=-1)
        g = contracted
    return g[..., 0]
