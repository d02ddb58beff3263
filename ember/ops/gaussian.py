"""Unnormalized Gaussians in information form, the algebra behind the Gaussian HMMs.

A :class:`Gaussian` is the log density ``-x.P.x / 2 + x.info_vec + log_normalizer`` over
``dim()`` variables, batched. Adding two adds log densities; :func:`gaussian_tensordot`
integrates out shared variables; :func:`sequential_gaussian_tensordot` chains a time series of
transition factors by parallel scan (``O(log T)`` sequential steps), and
:func:`sequential_gaussian_filter_sample` draws the chain's joint sample by parallel-scan
forward filtering, backward sampling. :class:`AffineNormal` is the cheap special case of a
diagonal normal whose mean is affine in another variable.

>>> import ember.distributions as dist
>>> g = mvn_to_gaussian(dist.MultivariateNormal(torch.zeros(2), torch.eye(2)))
>>> abs(float(g.event_logsumexp())) < 1e-6  # a normalized density integrates to one
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ember.ops._gaussian import Gaussian, gaussian_tensordot
from ember.ops._linalg import broadcast, matvec

__all__ = [
    "AffineNormal",
    "Gaussian",
    "gaussian_tensordot",
    "matrix_and_gaussian_to_gaussian",
    "matrix_and_mvn_to_gaussian",
    "mvn_to_gaussian",
    "sequential_gaussian_filter_sample",
    "sequential_gaussian_tensordot",
]

_LOG_2PI = math.log(2 * math.pi)


def _is_normal_vector(dist: object) -> bool:
    return isinstance(dist, torch.distributions.MultivariateNormal) or (
        isinstance(dist, torch.distributions.Independent)
        and isinstance(dist.base_dist, torch.distributions.Normal)
        and dist.reinterpreted_batch_ndims == 1
    )


def _check_normal_vector(dist: object, name: str) -> None:
    if not _is_normal_vector(dist):
        raise ValueError(
            f"{name}: expected a MultivariateNormal or Normal(...).to_event(1), got {dist!r}"
        )


class AffineNormal:
    """The conditional ``p(y | x) = Normal(x @ matrix + loc, scale).to_event(1)``.

    It behaves as the equivalent :class:`Gaussian` over ``(x, y)`` (see :meth:`to_gaussian`)
    but conditions on ``y`` or on ``x`` in ``O(x_dim * y_dim)``, without a joint precision.

    :param matrix: the ``(x_dim, y_dim)`` transformation, batched.
    :param loc: the offset of ``y``'s mean, shape ``batch + (y_dim,)``.
    :param scale: the standard deviations of ``y``, shaped as ``loc``.
    :raises ValueError: if the shapes disagree.

    >>> a = AffineNormal(torch.ones(1, 1), torch.zeros(1), torch.ones(1))
    >>> a.condition(torch.tensor([1.0])).log_density(torch.tensor([1.0]))
    tensor(-0.9189)
    """

    def __init__(self, matrix: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> None:
        if loc.shape != scale.shape or matrix.shape[:-2] != loc.shape[:-1] or matrix.size(-1) != loc.size(-1):
            raise ValueError(
                "AffineNormal: expected matrix (..., x_dim, y_dim), loc and scale (..., y_dim), "
                f"got {tuple(matrix.shape)}, {tuple(loc.shape)}, {tuple(scale.shape)}"
            )
        self.matrix = matrix
        self.loc = loc
        self.scale = scale
        self._gaussian: Gaussian | None = None

    @property
    def batch_shape(self) -> torch.Size:
        """The batch shape of ``matrix``."""
        return self.matrix.shape[:-2]

    def dim(self) -> int:
        """The number of variables, ``x_dim + y_dim``."""
        return self.matrix.size(-2) + self.matrix.size(-1)

    def condition(self, value: torch.Tensor) -> Gaussian:
        """Fix trailing variables: with all of ``y`` given, a Gaussian over ``x`` directly.

        :param value: values of the trailing variables.
        """
        if value.size(-1) != self.loc.size(-1):
            return self.to_gaussian().condition(value)
        root = self.matrix / self.scale.unsqueeze(-2)
        delta = (value - self.loc) / self.scale
        log_normalizer = (
            -0.5 * self.loc.size(-1) * _LOG_2PI
            - 0.5 * delta.square().sum(-1)
            - self.scale.log().sum(-1)
        )
        return Gaussian(log_normalizer, matvec(root, delta), root @ root.mT)

    def left_condition(self, value: torch.Tensor) -> AffineNormal | Gaussian:
        """Fix leading variables: with all of ``x`` given, a diagonal normal over ``y``.

        :param value: values of the leading variables.
        """
        if value.size(-1) != self.matrix.size(-2):
            return self.to_gaussian().left_condition(value)
        loc = matvec(self.matrix.mT, value) + self.loc
        matrix = value.new_zeros(loc.shape[:-1] + (0, loc.size(-1)))
        return AffineNormal(matrix, loc, self.scale.expand(loc.shape))

    def rsample(
        self, sample_shape: Sequence[int] = (), noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A reparameterized draw of ``y``; only once ``x`` has been conditioned away.

        :param sample_shape: the shape of independent draws.
        :param noise: standard normal noise of the result's shape.
        :raises NotImplementedError: if ``x_dim > 0``.
        """
        if self.matrix.size(-2) > 0:
            raise NotImplementedError("AffineNormal.rsample: condition on x first")
        shape = tuple(sample_shape) + tuple(self.batch_shape) + self.loc.shape[-1:]
        if noise is None:
            noise = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + noise.reshape(shape) * self.scale

    def to_gaussian(self) -> Gaussian:
        """The equivalent :class:`Gaussian` over ``(x, y)`` (computed once)."""
        if self._gaussian is None:
            noise = torch.distributions.Independent(torch.distributions.Normal(self.loc, self.scale), 1)
            self._gaussian = matrix_and_gaussian_to_gaussian(self.matrix, mvn_to_gaussian(noise))
        return self._gaussian

    def expand(self, batch_shape: Sequence[int]) -> AffineNormal:
        """Broadcast to ``batch_shape``.

        :param batch_shape: the new batch shape.
        """
        shape = tuple(batch_shape)
        return AffineNormal(
            self.matrix.expand(shape + self.matrix.shape[-2:]),
            self.loc.expand(shape + self.loc.shape[-1:]),
            self.scale.expand(shape + self.scale.shape[-1:]),
        )

    def reshape(self, batch_shape: Sequence[int]) -> AffineNormal:
        """Reshape the batch dimensions.

        :param batch_shape: the new batch shape.
        """
        shape = tuple(batch_shape)
        return AffineNormal(
            self.matrix.reshape(shape + self.matrix.shape[-2:]),
            self.loc.reshape(shape + self.loc.shape[-1:]),
            self.scale.reshape(shape + self.scale.shape[-1:]),
        )

    def __getitem__(self, index: tuple[Any, ...]) -> AffineNormal:
        """Index the batch dimensions with a tuple index."""
        return AffineNormal(
            self.matrix[index + (slice(None), slice(None))],
            self.loc[index + (slice(None),)],
            self.scale[index + (slice(None),)],
        )

    def event_permute(self, perm: torch.Tensor) -> Gaussian:
        """The equivalent Gaussian with variables reordered by ``perm``."""
        return self.to_gaussian().event_permute(perm)

    def __add__(self, other: Gaussian | float | torch.Tensor) -> Gaussian:
        """The equivalent Gaussian plus ``other``."""
        return self.to_gaussian() + other

    def marginalize(self, left: int = 0, right: int = 0) -> Gaussian:
        """Integrate out variables; integrating out all of ``y`` leaves a flat density in ``x``.

        :param left: how many leading variables to integrate out.
        :param right: how many trailing variables to integrate out.
        """
        if left == 0 and right == self.loc.size(-1):
            n = self.matrix.size(-2)
            batch = self.batch_shape
            return Gaussian(
                self.scale.new_zeros(batch),
                self.scale.new_zeros(batch + (n,)),
                self.scale.new_zeros(batch + (n, n)),
            )
        return self.to_gaussian().marginalize(left, right)


def mvn_to_gaussian(mvn: Any) -> Gaussian:
    """The :class:`Gaussian` of a multivariate (or diagonal ``to_event(1)``) normal.

    :param mvn: a ``MultivariateNormal`` or ``Independent(Normal, 1)``.
    :raises ValueError: for other distributions.
    """
    _check_normal_vector(mvn, "mvn_to_gaussian")
    if isinstance(mvn, torch.distributions.Independent):
        base = mvn.base_dist
        diagonal = base.scale.pow(-2)
        precision = diagonal.diag_embed()
        loc, info_vec, scale_diag = base.loc, base.loc * diagonal, base.scale
    else:
        precision = mvn.precision_matrix
        loc = mvn.loc
        info_vec = matvec(precision, loc)
        scale_diag = mvn.scale_tril.diagonal(dim1=-2, dim2=-1)
    log_normalizer = (
        -0.5 * loc.size(-1) * _LOG_2PI
        - 0.5 * (info_vec * loc).sum(-1)
        - scale_diag.log().sum(-1)
    )
    return Gaussian(log_normalizer, info_vec, precision)


def matrix_and_gaussian_to_gaussian(matrix: torch.Tensor, y_gaussian: Gaussian) -> Gaussian:
    """The conditional ``p(y | x)`` where ``y - x @ matrix ~ y_gaussian``, over ``(x, y)``.

    :param matrix: the ``(x_dim, y_dim)`` transformation.
    :param y_gaussian: the density of the noise ``y - x @ matrix``.
    """
    p_yy = y_gaussian.precision
    p_xy = -(matrix @ p_yy)
    p_xx = -(p_xy @ matrix.mT)
    batch = broadcast(p_xx.shape[:-2], p_yy.shape[:-2])
    x_dim, y_dim = matrix.shape[-2:]
    precision = torch.cat(
        [
            torch.cat([p_xx.expand(batch + (x_dim, x_dim)), p_xy.expand(batch + (x_dim, y_dim))], -1),
            torch.cat([p_xy.mT.expand(batch + (y_dim, x_dim)), p_yy.expand(batch + (y_dim, y_dim))], -1),
        ],
        -2,
    )
    info_y = y_gaussian.info_vec
    info_x = -matvec(matrix, info_y)
    info_batch = broadcast(info_x.shape[:-1], info_y.shape[:-1])
    info_vec = torch.cat([info_x.expand(info_batch + (x_dim,)), info_y.expand(info_batch + (y_dim,))], -1)
    return Gaussian(y_gaussian.log_normalizer, info_vec, precision)


def matrix_and_mvn_to_gaussian(matrix: torch.Tensor, mvn: Any) -> Gaussian | AffineNormal:
    """The noisy affine map ``y = x @ matrix + noise``, ``noise ~ mvn``, over ``(x, y)``.

    Diagonal noise gives an :class:`AffineNormal`, which conditions faster.

    :param matrix: the ``(x_dim, y_dim)`` transformation.
    :param mvn: a ``MultivariateNormal`` or ``Independent(Normal, 1)`` with event ``(y_dim,)``.
    :raises ValueError: if the distribution or shapes do not fit.
    """
    _check_normal_vector(mvn, "matrix_and_mvn_to_gaussian")
    x_dim, y_dim = matrix.shape[-2:]
    if mvn.event_shape != (y_dim,):
        raise ValueError(
            f"matrix_and_mvn_to_gaussian: matrix of shape {tuple(matrix.shape)} needs noise of "
            f"event shape ({y_dim},), got {tuple(mvn.event_shape)}"
        )
    batch = broadcast(matrix.shape[:-2], mvn.batch_shape)
    matrix = matrix.expand(batch + (x_dim, y_dim))
    mvn = mvn.expand(batch)
    if isinstance(mvn, torch.distributions.Independent):
        return AffineNormal(matrix, mvn.base_dist.loc, mvn.base_dist.scale)
    return matrix_and_gaussian_to_gaussian(matrix, mvn_to_gaussian(mvn))


def _pair_up(g: Gaussian, batch: torch.Size) -> tuple[Gaussian, Gaussian, int]:
    time = g.batch_shape[-1]
    even = time // 2 * 2
    pairs = g[..., :even].reshape(batch + (even // 2, 2))
    return pairs[..., 0], pairs[..., 1], even


def _midpoint_joint(x: Gaussian, y: Gaussian, state: int) -> Gaussian:
    """``x(a, b) + y(b, c)`` over ``(b, a, c)``, built blockwise (no padding or permuting)."""
    n = state
    batch = broadcast(x.precision.shape[:-2], y.precision.shape[:-2], x.info_vec.shape[:-1], y.info_vec.shape[:-1])
    precision = x.precision.new_zeros(batch + (3 * n, 3 * n))
    precision[..., :n, :n] = x.precision[..., n:, n:] + y.precision[..., :n, :n]
    precision[..., :n, n : 2 * n] = x.precision[..., n:, :n]
    precision[..., n : 2 * n, :n] = x.precision[..., :n, n:]
    precision[..., :n, 2 * n :] = y.precision[..., :n, n:]
    precision[..., 2 * n :, :n] = y.precision[..., n:, :n]
    precision[..., n : 2 * n, n : 2 * n] = x.precision[..., :n, :n]
    precision[..., 2 * n :, 2 * n :] = y.precision[..., n:, n:]
    info_vec = x.info_vec.new_zeros(batch + (3 * n,))
    info_vec[..., :n] = x.info_vec[..., n:] + y.info_vec[..., :n]
    info_vec[..., n : 2 * n] = x.info_vec[..., :n]
    info_vec[..., 2 * n :] = y.info_vec[..., n:]
    return Gaussian(x.log_normalizer + y.log_normalizer, info_vec, precision)


def sequential_gaussian_tensordot(gaussian: Gaussian) -> Gaussian:
    """Chain a time series of transition factors: ``x[..., 0] @ x[..., 1] @ ... @ x[..., T-1]``.

    Each factor is over ``(z_prev, z_next)``; the result is over ``(z_first, z_last)``.
    Neighbouring pairs are contracted at once, so the loop runs ``ceil(log2 T)`` times.

    :param gaussian: a Gaussian with an even ``dim()`` whose rightmost batch dim is time.
    :raises ValueError: if ``dim()`` is odd.
    """
    if gaussian.dim() % 2:
        raise ValueError(f"sequential_gaussian_tensordot: dim is not even: {gaussian.dim()}")
    gaussian = gaussian.expand(gaussian.batch_shape)
    batch = gaussian.batch_shape[:-1]
    state = gaussian.dim() // 2
    while gaussian.batch_shape[-1] > 1:
        time = gaussian.batch_shape[-1]
        x, y, even = _pair_up(gaussian, batch)
        contracted = gaussian_tensordot(x, y, state)
        if time > even:
            contracted = Gaussian.cat((contracted, gaussian[..., -1:]), dim=-1)
        gaussian = contracted
    return gaussian[..., 0]


def sequential_gaussian_filter_sample(
    init: Gaussian,
    trans: Gaussian,
    sample_shape: Sequence[int] = (),
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw ``z_0 .. z_T`` from ``init(z_0) + sum_t trans[t](z_t, z_(t+1))``, reparameterized.

    The up-sweep contracts neighbouring transitions as :func:`sequential_gaussian_tensordot`
    does, keeping each level's joint factors; the down-sweep samples ``(z_0, z_T)`` and then
    fills in midpoints level by level, each conditioned on its two known neighbours.

    :param init: a Gaussian over the initial state.
    :param trans: transitions over ``(z_t, z_(t+1))``, time the rightmost batch dim.
    :param sample_shape: the shape of independent draws.
    :param noise: standard normal noise of shape ``sample_shape + batch_shape + (T + 1,
        state_dim)``; zeros give the mode, ``cat([z, -z])`` antithetic draws.
    :raises ValueError: if ``trans.dim() != 2 * init.dim()`` or ``noise`` has the wrong shape.
    """
    state = init.dim()
    if trans.dim() != 2 * state:
        raise ValueError(
            f"sequential_gaussian_filter_sample: trans.dim() = {trans.dim()} must be twice "
            f"init.dim() = {state}"
        )
    batch = torch.Size(broadcast(trans.batch_shape[:-1], init.batch_shape))
    if init.batch_shape != batch:
        init = init.expand(batch)
    device = trans.precision.device
    tape: list[Gaussian] = []
    gaussian = trans.expand(trans.batch_shape)
    trans_batch = gaussian.batch_shape[:-1]
    while gaussian.batch_shape[-1] > 1:
        time = gaussian.batch_shape[-1]
        x, y, even = _pair_up(gaussian, trans_batch)
        # Joint factors are ordered (midpoint, left, right), so conditioning on the trailing
        # (left, right) leaves the midpoint.
        joint = _midpoint_joint(x, y, state)
        tape.append(joint)
        contracted = joint.marginalize(left=state)
        if time > even:
            contracted = Gaussian.cat((contracted, gaussian[..., -1:]), dim=-1)
        gaussian = contracted
    ends = gaussian[..., 0] + init.event_pad(right=state)

    duration = 1 + trans.batch_shape[-1]
    out_shape = torch.Size(sample_shape) + batch
    if noise is None:
        noise = torch.randn(out_shape + (duration, state), dtype=trans.precision.dtype, device=device)
    elif noise.shape != out_shape + (duration, state):
        raise ValueError(
            f"sequential_gaussian_filter_sample: expected noise of shape "
            f"{tuple(out_shape + (duration, state))}, got {tuple(noise.shape)}"
        )
    used = 0

    def draw(g: Gaussian, steps: int, extra: Sequence[int] = ()) -> torch.Tensor:
        nonlocal used
        assert noise is not None
        block = noise[..., used : used + steps, :]
        used += steps
        return g.rsample(extra, noise=block)

    result = draw(ends, 2, sample_shape).reshape(out_shape + (2, state))
    for joint in reversed(tape):
        pairs = joint.batch_shape[-1]
        carried = result[..., pairs + 1 :, :]  # the odd level's unpaired last point, if any
        known = result[..., : pairs + 1, :]
        neighbours = torch.cat([known[..., :-1, :], known[..., 1:, :]], -1)
        middle = draw(joint.condition(neighbours), pairs)
        woven = torch.stack([known[..., :-1, :], middle], -2).reshape(out_shape + (2 * pairs, state))
        result = torch.cat([woven, known[..., -1:, :], carried], -2)
    return result
