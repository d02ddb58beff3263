"""The sine bivariate von Mises distribution over pairs of angles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all, lazy_property
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch import VonMises
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_shape
from ember._util import warn_at_caller

__all__ = ["SineBivariateVonMises"]

_NORMALIZER_TERMS = 50  # terms of the series over Bessel-function products
_PROPOSALS = 8  # rejection-sampling proposals per draw and round


def _log_bessel_iv(max_order: int, x: torch.Tensor, terms: int) -> torch.Tensor:
    """``log I_m(x)`` for ``m = 0..max_order``, stacked on a new leftmost dim, by the power series."""
    k = torch.arange(terms, dtype=x.dtype, device=x.device)
    orders = torch.arange(max_order + 1, dtype=x.dtype, device=x.device)
    log_half = (x / 2).log().unsqueeze(-1).unsqueeze(-1)  # (..., 1, 1)
    exponents = (2 * k + orders[:, None]) * log_half
    series = exponents - torch.lgamma(k + 1) - torch.lgamma(k + orders[:, None] + 1)
    return series.logsumexp(-1).movedim(-1, 0)


def _log_i0(x: torch.Tensor) -> torch.Tensor:
    scaled: torch.Tensor = torch.special.i0e(x)
    return scaled.log() + x


class SineBivariateVonMises(TorchDistribution):
    """Two dependent angles on the torus, with density proportional to
    ``exp(k1 cos(x1 - m1) + k2 cos(x2 - m2) + rho sin(x1 - m1) sin(x2 - m2))``.

    This is the sine model of bivariate directional statistics (Singh, Hnizdo and Demchuk,
    2002), used for coupled torsion angles. ``C`` is a series of Bessel-function products,
    accurate up to concentrations of 10,000. The distribution is unimodal while
    ``rho^2 < k1 * k2``; sampling (rejection from an angular central Gaussian envelope, after
    Kent, Ganeiber and Mardia, 2018) slows as it turns bimodal. Give ``weighted_correlation``
    ``w`` in ``[-1, 1]`` instead of ``correlation`` to set ``rho = w * sqrt(k1 * k2)``.

    :param phi_loc: location of the first angle.
    :param psi_loc: location of the second angle.
    :param phi_concentration: concentration of the first angle (positive).
    :param psi_concentration: concentration of the second angle (positive).
    :param correlation: the coupling ``rho``.
    :param weighted_correlation: the coupling relative to ``sqrt(k1 * k2)``.
    :param validate_args: whether to validate arguments and samples.
    :raises ValueError: unless exactly one of the two correlations is given, or if a
        concentration exceeds 10,000.

    >>> d = SineBivariateVonMises(0.0, 0.0, 1.0, 1.0, correlation=0.0)
    >>> d.log_prob(torch.zeros(2))
    tensor(-2.1476)
    """

    arg_constraints = {
        "phi_loc": constraints.real,
        "psi_loc": constraints.real,
        "phi_concentration": constraints.positive,
        "psi_concentration": constraints.positive,
        "correlation": constraints.real,
    }
    support = constraints.independent(constraints.real, 1)  # type: ignore[no-untyped-call]  # torch: unannotated
    max_sample_iter = 1000

    phi_loc: torch.Tensor
    psi_loc: torch.Tensor
    phi_concentration: torch.Tensor
    psi_concentration: torch.Tensor
    correlation: torch.Tensor

    def __init__(
        self,
        phi_loc: torch.Tensor | float,
        psi_loc: torch.Tensor | float,
        phi_concentration: torch.Tensor | float,
        psi_concentration: torch.Tensor | float,
        correlation: torch.Tensor | float | None = None,
        weighted_correlation: torch.Tensor | float | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if (correlation is None) == (weighted_correlation is None):
            raise ValueError(
                "SineBivariateVonMises: give exactly one of correlation and weighted_correlation"
            )
        if weighted_correlation is not None:
            product = torch.as_tensor(phi_concentration) * torch.as_tensor(psi_concentration)
            correlation = torch.as_tensor(weighted_correlation) * product.sqrt()
        assert correlation is not None
        params = broadcast_all(
            phi_loc, psi_loc, phi_concentration, psi_concentration, correlation
        )
        largest = torch.maximum(params[2].max(), params[3].max())
        if bool(largest > 10_000.0):
            raise ValueError(
                "Normalization of SineBivariateVonMises is inaccurate for current max "
                f"concentration ({largest} > 10,000)."
            )
        (
            self.phi_loc,
            self.psi_loc,
            self.phi_concentration,
            self.psi_concentration,
            self.correlation,
        ) = params
        super().__init__(params[0].shape, torch.Size([2]), validate_args)
        if self._validate_args and bool(
            (self.phi_concentration * self.psi_concentration <= self.correlation**2).any()
        ):
            warn_at_caller(
                f"{type(self).__name__} bimodal due to concentration-correlation relation, "
                "sampling will likely fail.",
                UserWarning,
            )

    @lazy_property
    def norm_const(self) -> torch.Tensor:
        """``log C``: ``log 4 pi^2 + log sum_i binom(2i, i) (rho^2 / 4 k1 k2)^i I_i(k1) I_i(k2)``."""
        k1, k2, rho = self.phi_concentration, self.psi_concentration, self.correlation
        bessel_terms = int(max(501, float(k1.max() + k2.max())))
        i = torch.arange(_NORMALIZER_TERMS, dtype=k1.dtype, device=k1.device)
        i = i.reshape((-1,) + (1,) * k1.dim())
        log_binomial = torch.lgamma(2 * i + 1) - 2 * torch.lgamma(i + 1)
        tiny = torch.finfo(k1.dtype).tiny
        log_ratio = (rho**2).clamp(min=tiny).log() - (4 * k1 * k2).log()
        log_bessel = _log_bessel_iv(_NORMALIZER_TERMS - 1, k1, bessel_terms) + _log_bessel_iv(
            _NORMALIZER_TERMS - 1, k2, bessel_terms
        )
        terms = log_binomial + i * log_ratio + log_bessel
        return 2 * math.log(2 * math.pi) + terms.logsumexp(0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log density of ``value = (phi, psi)`` on the last dimension.

        :param value: pairs of angles.
        """
        if self._validate_args:
            self._validate_sample(value)
        phi = value[..., 0] - self.phi_loc
        psi = value[..., 1] - self.psi_loc
        unnormalized = (
            self.phi_concentration * phi.cos()
            + self.psi_concentration * psi.cos()
            + self.correlation * phi.sin() * psi.sin()
        )
        return unnormalized - self.norm_const

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw the first angle's marginal by rejection, then the second given the first.

        :param sample_shape: the shape of independent draws.
        :raises ValueError: if ``max_sample_iter`` rounds do not fill every draw.
        """
        shape = torch.Size(sample_shape) + self.batch_shape
        k1 = self.phi_concentration.expand(shape).reshape(-1)
        k2 = self.psi_concentration.expand(shape).reshape(-1)
        rho = self.correlation.expand(shape).reshape(-1)
        with torch.no_grad():
            phi = self._sample_phi(k1.detach(), k2.detach(), rho.detach())
            sin_phi = phi.sin()
            psi = VonMises(
                torch.atan(rho * sin_phi / k2), (k2**2 + (rho * sin_phi) ** 2).sqrt()
            ).sample()
        centered = torch.stack([phi.reshape(shape), psi.reshape(shape)], dim=-1)
        locs = torch.stack([self.phi_loc, self.psi_loc], dim=-1)
        return (centered + locs + math.pi).remainder(2 * math.pi) - math.pi

    def _sample_phi(self, k1: torch.Tensor, k2: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        # The centered marginal of phi is proportional to exp(k1 cos phi) I0(a(phi)) with
        # a = sqrt(k2^2 + rho^2 sin^2 phi). As a density of x = (cos phi, sin phi) it lies
        # under the Bingham density exp(-x' A x), A = diag(lam0, lam1) below, which lies under
        # an angular central Gaussian with covariance (I + 2 A / b)^-1 (Kent et al., 2018).
        # The bound uses cos phi - 1 <= -sin^2 phi / 2 and the concavity of log I0(sqrt(u))
        # in u, whose slope at u = k2^2 is I1(k2) / (2 k2 I0(k2)).
        bessel_ratio = torch.special.i1e(k2) / torch.special.i0e(k2)
        lam = 0.5 * (k1 - rho**2 * bessel_ratio / k2)
        shift = lam.clamp(max=0)
        lams = torch.stack([-shift, lam - shift])  # one of the two is zero
        width = lams.max(0).values
        b = 1 - width + (width**2 + 1).sqrt()  # solves sum_i 1 / (b + 2 lam_i) = 1
        std = (1 + 2 * lams / b).rsqrt()
        log_i0_k2 = _log_i0(k2)
        result = torch.empty_like(k1)
        pending = torch.arange(k1.numel(), device=k1.device)
        for _ in range(self.max_sample_iter):
            if pending.numel() == 0:
                return result
            # Several proposals per pending draw, keeping the first accepted, so rounds stay few.
            x = torch.randn(2, pending.numel(), _PROPOSALS, dtype=k1.dtype, device=k1.device)
            x = x * std[:, pending, None]
            x = x / x.norm(dim=0)
            quadratic = (lams[:, pending, None] * x**2).sum(0)
            amplitude = (k2[pending, None] ** 2 + (rho[pending, None] * x[1]) ** 2).sqrt()
            log_target = k1[pending, None] * (x[0] - 1) + _log_i0(amplitude) - log_i0_k2[pending, None]
            b_pending = b[pending, None]
            log_envelope = 1 - b_pending / 2 + (b_pending / 2 + quadratic).log()
            log_u = torch.rand_like(quadratic).log()
            accept = log_u < log_target + shift[pending, None] + log_envelope
            done = accept.any(-1)
            first = accept.to(torch.uint8).argmax(-1)[done]
            rows = done.nonzero().squeeze(-1)
            result[pending[done]] = torch.atan2(x[1, rows, first], x[0, rows, first])
            pending = pending[~done]
        if pending.numel() == 0:
            return result
        raise ValueError(
            "maximum number of iterations exceeded; "
            "try increasing `SineBivariateVonMises.max_sample_iter`"
        )

    @property
    def mean(self) -> torch.Tensor:
        """The locations ``(phi_loc, psi_loc)``."""
        return torch.stack([self.phi_loc, self.psi_loc], dim=-1)

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The batch shape broadcasts all arguments; the event is a pair.

        :param arg_shapes: shapes of the constructor arguments.
        """
        return torch.Size(broadcast_shape(*arg_shapes.values())), torch.Size([2])

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters (and the cached normalizer) to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, SineBivariateVonMises, _instance)
        shape = torch.Size(batch_shape)
        for name in self.arg_constraints:
            setattr(new, name, getattr(self, name).expand(shape))
        new.__dict__["norm_const"] = self.norm_const.expand(shape)
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new
