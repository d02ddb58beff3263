"""Ember's versions of every :mod:`torch.distributions` distribution.

Each class subclasses its torch namesake and
:class:`~ember.distributions.TorchDistributionMixin`, so it works wherever torch's does and
has Pyro's methods (``to_event``, ``mask``, ``expand_by``, ``score_parts``, ...). Classes that
change torch's behaviour say so. Discrete distributions live in
:mod:`ember.distributions.torch_discrete` and distributions over vectors and matrices in
:mod:`ember.distributions.torch_multivariate`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.distributions.transforms import ExpTransform
from torch.types import _size

from ember.distributions import _conjugate_update as _updates
from ember.distributions._common import DelegatedRsample, TypedTorchMethods, new_instance
from ember.distributions.torch_discrete import (
    Bernoulli,
    Binomial,
    Categorical,
    Geometric,
    Multinomial,
    NegativeBinomial,
    OneHotCategorical,
    OneHotCategoricalStraightThrough,
    Poisson,
)
from ember.distributions.torch_distribution import Independent, TorchDistributionMixin
from ember.distributions.torch_multivariate import (
    Dirichlet,
    LKJCholesky,
    LogisticNormal,
    LowRankMultivariateNormal,
    MixtureSameFamily,
    MultivariateNormal,
    RelaxedOneHotCategorical,
    Wishart,
)
from ember.distributions.util import broadcast_shape

__all__ = [
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Chi2",
    "ContinuousBernoulli",
    "Dirichlet",
    "Exponential",
    "ExponentialFamily",
    "FisherSnedecor",
    "Gamma",
    "GeneralizedPareto",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "Independent",
    "InverseGamma",
    "Kumaraswamy",
    "LKJCholesky",
    "Laplace",
    "LogNormal",
    "LogisticNormal",
    "LowRankMultivariateNormal",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "NegativeBinomial",
    "Normal",
    "OneHotCategorical",
    "OneHotCategoricalStraightThrough",
    "Pareto",
    "Poisson",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "StudentT",
    "TransformedDistribution",
    "Uniform",
    "VonMises",
    "Weibull",
    "Wishart",
]


class Beta(TypedTorchMethods, torch.distributions.Beta, TorchDistributionMixin):
    """Beta distribution on ``[0, 1]``.

    >>> Beta(2.0, 2.0).log_prob(torch.tensor(0.5))
    tensor(0.4055)
    """

    conjugate_update = _updates.beta_update


class Cauchy(TypedTorchMethods, torch.distributions.Cauchy, TorchDistributionMixin):
    """Cauchy (Lorentz) distribution.

    >>> Cauchy(0.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-1.1447)
    """


class Chi2(TypedTorchMethods, torch.distributions.Chi2, TorchDistributionMixin):
    """Chi-squared distribution with ``df`` degrees of freedom.

    >>> Chi2(torch.tensor(2.0)).log_prob(torch.tensor(2.0))
    tensor(-1.6931)
    """


class ContinuousBernoulli(
    TypedTorchMethods, torch.distributions.ContinuousBernoulli, TorchDistributionMixin
):
    """Continuous Bernoulli distribution on ``[0, 1]``.

    >>> ContinuousBernoulli(torch.tensor(0.5)).log_prob(torch.tensor(0.3))
    tensor(0.)
    """


class Exponential(TypedTorchMethods, torch.distributions.Exponential, TorchDistributionMixin):
    """Exponential distribution with rate ``rate``.

    >>> Exponential(torch.tensor(2.0)).log_prob(torch.tensor(0.0))
    tensor(0.6931)
    """


class ExponentialFamily(
    TypedTorchMethods, torch.distributions.ExponentialFamily, TorchDistributionMixin
):
    """Base class for exponential-family distributions (see torch's).

    >>> issubclass(ExponentialFamily, torch.distributions.ExponentialFamily)
    True
    """


class FisherSnedecor(
    TypedTorchMethods, torch.distributions.FisherSnedecor, TorchDistributionMixin
):
    """Fisher-Snedecor (F) distribution.

    >>> FisherSnedecor(2.0, 2.0).log_prob(torch.tensor(1.0))
    tensor(-1.3863)
    """


class Gamma(TypedTorchMethods, torch.distributions.Gamma, TorchDistributionMixin):
    """Gamma distribution with shape ``concentration`` and rate ``rate``.

    >>> Gamma(1.0, 1.0).log_prob(torch.tensor(1.0))
    tensor(-1.)
    """

    conjugate_update = _updates.gamma_update


class GeneralizedPareto(
    TypedTorchMethods, torch.distributions.GeneralizedPareto, TorchDistributionMixin
):
    """Generalized Pareto distribution.

    >>> GeneralizedPareto(0.0, 1.0, 0.0).log_prob(torch.tensor(1.0))
    tensor(-1.)
    """


class Gumbel(
    DelegatedRsample, TypedTorchMethods, torch.distributions.Gumbel, TorchDistributionMixin
):
    """Gumbel (type I extreme value) distribution.

    >>> Gumbel(0.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-1.)
    """


class HalfCauchy(TypedTorchMethods, torch.distributions.HalfCauchy, TorchDistributionMixin):
    """Cauchy distribution folded onto the nonnegative reals.

    >>> HalfCauchy(1.0).log_prob(torch.tensor(0.0))
    tensor(-0.4516)
    """


class HalfNormal(TypedTorchMethods, torch.distributions.HalfNormal, TorchDistributionMixin):
    """Normal distribution folded onto the nonnegative reals.

    >>> HalfNormal(1.0).log_prob(torch.tensor(0.0))
    tensor(-0.2258)
    """


class InverseGamma(TypedTorchMethods, torch.distributions.InverseGamma, TorchDistributionMixin):
    """Inverse gamma distribution.

    >>> InverseGamma(1.0, 1.0).log_prob(torch.tensor(1.0))
    tensor(-1.)
    """


class Kumaraswamy(TypedTorchMethods, torch.distributions.Kumaraswamy, TorchDistributionMixin):
    """Kumaraswamy distribution on ``[0, 1]``.

    >>> Kumaraswamy(1.0, 1.0).log_prob(torch.tensor(0.5))
    tensor(0.)
    """


class Laplace(TypedTorchMethods, torch.distributions.Laplace, TorchDistributionMixin):
    """Laplace (double exponential) distribution.

    >>> Laplace(0.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-0.6931)
    """


class LogNormal(TypedTorchMethods, torch.distributions.LogNormal, TorchDistributionMixin):
    """Distribution of ``exp(x)`` for normal ``x``.

    Unlike torch's, ``base_dist`` is an Ember :class:`Normal`, so it has Ember's methods.

    :param loc: mean of the log of the variable.
    :param scale: standard deviation of the log of the variable.
    :param validate_args: whether to validate arguments and samples.

    >>> LogNormal(0.0, 1.0).log_prob(torch.tensor(1.0)), type(LogNormal(0.0, 1.0).base_dist)
    (tensor(-0.9189), <class 'ember.distributions.torch.Normal'>)
    """

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        base_dist = Normal(loc, scale, validate_args=validate_args)
        # Skip torch.LogNormal.__init__, which would build a torch Normal as base_dist.
        torch.distributions.TransformedDistribution.__init__(
            self, base_dist, ExpTransform(), validate_args=validate_args
        )

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, LogNormal, _instance)
        # torch leaves expand unannotated
        torch.distributions.TransformedDistribution.expand(  # type: ignore[no-untyped-call]
            self, batch_shape, _instance=new
        )
        return new


class Normal(TypedTorchMethods, torch.distributions.Normal, TorchDistributionMixin):
    """Normal (Gaussian) distribution with mean ``loc`` and standard deviation ``scale``.

    >>> Normal(0.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-0.9189)
    """


class Pareto(
    DelegatedRsample, TypedTorchMethods, torch.distributions.Pareto, TorchDistributionMixin
):
    """Pareto type I distribution.

    >>> Pareto(1.0, 1.0).log_prob(torch.tensor(1.0))
    tensor(0.)
    """


class RelaxedBernoulli(
    TypedTorchMethods, torch.distributions.RelaxedBernoulli, TorchDistributionMixin
):
    """Concrete relaxation of the Bernoulli distribution, reparameterizable.

    >>> RelaxedBernoulli(torch.tensor(0.5), torch.tensor(0.5)).has_rsample
    True
    """


class StudentT(TypedTorchMethods, torch.distributions.StudentT, TorchDistributionMixin):
    """Student's t distribution with ``df`` degrees of freedom.

    >>> StudentT(1.0).log_prob(torch.tensor(0.0))
    tensor(-1.1447)
    """


class TransformedDistribution(
    DelegatedRsample,
    TypedTorchMethods, torch.distributions.TransformedDistribution, TorchDistributionMixin
):
    """A base distribution pushed through a sequence of transforms.

    >>> TransformedDistribution(Normal(0.0, 1.0), [ExpTransform()]).log_prob(torch.tensor(1.0))
    tensor(-0.9189)
    """


class Uniform(TypedTorchMethods, torch.distributions.Uniform, TorchDistributionMixin):
    """Uniform distribution on ``[low, high)``.

    Unlike torch's, ``support`` uses ``low`` and ``high`` as given rather than broadcast to the
    batch shape, so transforms to the support apply to any batch shape (as in Pyro).

    :param low: lower bound, inclusive.
    :param high: upper bound, exclusive.
    :param validate_args: whether to validate arguments and samples.

    >>> Uniform(0.0, torch.tensor([1.0, 2.0])).log_prob(torch.tensor(0.5))
    tensor([ 0.0000, -0.6931])
    """

    def __init__(
        self,
        low: torch.Tensor | float,
        high: torch.Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        self._unbroadcasted_low = low
        self._unbroadcasted_high = high
        super().__init__(low, high, validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand to ``batch_shape``, keeping the unbroadcast bounds of the support.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, Uniform, _instance)
        super().expand(batch_shape, _instance=new)
        new._unbroadcasted_low = self._unbroadcasted_low
        new._unbroadcasted_high = self._unbroadcasted_high
        return new

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The batch shape broadcasts ``low`` and ``high``.

        :param arg_shapes: shapes of ``low`` and ``high``.
        """
        return torch.Size(broadcast_shape(*arg_shapes.values())), torch.Size()

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        """The interval ``[low, high)`` with the bounds as given to the constructor."""
        low, high = self._unbroadcasted_low, self._unbroadcasted_high
        # torch leaves the constraint's __init__ unannotated
        return constraints.interval(low, high)  # type: ignore[no-untyped-call]


class VonMises(TypedTorchMethods, torch.distributions.VonMises, TorchDistributionMixin):
    """Von Mises (circular normal) distribution.

    >>> VonMises(torch.tensor(0.0), torch.tensor(1.0)).log_prob(torch.tensor(0.0))
    tensor(-1.0738)
    """


class Weibull(
    DelegatedRsample, TypedTorchMethods, torch.distributions.Weibull, TorchDistributionMixin
):
    """Weibull distribution.

    >>> Weibull(1.0, 1.0).log_prob(torch.tensor(1.0))
    tensor(-1.)
    """
