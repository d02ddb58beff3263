"""Pyro's extra distributions exist in Ember with Pyro's signatures and class metadata."""

from __future__ import annotations

import inspect

import pytest

import ember.distributions as dist
from tests.distributions._zoo import pyro_dist

NAMES = [
    "AffineBeta",
    "AsymmetricLaplace",
    "BetaBinomial",
    "DirichletMultinomial",
    "Empirical",
    "ExtendedBetaBinomial",
    "ExtendedBinomial",
    "FoldedDistribution",
    "GammaPoisson",
    "GaussianScaleMixture",
    "GroupedNormalNormal",
    "ImproperUniform",
    "Logistic",
    "LogNormalNegativeBinomial",
    "MaskedMixture",
    "MixtureOfDiagNormals",
    "MixtureOfDiagNormalsSharedCovariance",
    "NanMaskedMultivariateNormal",
    "NanMaskedNormal",
    "OrderedLogistic",
    "Rejector",
    "RelaxedBernoulliStraightThrough",
    "RelaxedOneHotCategoricalStraightThrough",
    "SkewLogistic",
    "SoftAsymmetricLaplace",
    "SoftLaplace",
    "Stable",
    "StableWithLogProb",
    "TruncatedPolyaGamma",
    "ZeroInflatedDistribution",
    "ZeroInflatedNegativeBinomial",
    "ZeroInflatedPoisson",
]


def _class_attribute(cls: type, name: str) -> object:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


@pytest.mark.parametrize("name", NAMES)
def test_class_is_public_with_pyros_constructor_signature(name: str) -> None:
    ours, theirs = getattr(dist, name), getattr(pyro_dist, name)
    assert name in dist.__all__ and ours.__doc__
    assert issubclass(ours, dist.TorchDistributionMixin)
    assert inspect.signature(ours.__init__).parameters.keys() == inspect.signature(theirs.__init__).parameters.keys()
    for parameter, pyro_parameter in zip(
        inspect.signature(ours.__init__).parameters.values(),
        inspect.signature(theirs.__init__).parameters.values(),
    ):
        assert (parameter.kind, parameter.default) == (pyro_parameter.kind, pyro_parameter.default)


@pytest.mark.parametrize("name", NAMES)
def test_class_metadata_matches_pyro(name: str) -> None:
    ours, theirs = getattr(dist, name), getattr(pyro_dist, name)
    for attribute in ("has_rsample", "has_enumerate_support"):
        mine, pyros = _class_attribute(ours, attribute), _class_attribute(theirs, attribute)
        if not isinstance(mine, property) and not isinstance(pyros, property):
            assert mine == pyros, attribute
    constraints, pyro_constraints = _class_attribute(ours, "arg_constraints"), _class_attribute(theirs, "arg_constraints")
    if isinstance(constraints, dict) and isinstance(pyro_constraints, dict):
        assert list(constraints) == list(pyro_constraints)
        for key, constraint in constraints.items():
            assert type(constraint).__name__ == type(pyro_constraints[key]).__name__, key
    support, pyro_support = _class_attribute(ours, "support"), _class_attribute(theirs, "support")
    if not isinstance(support, property) and not isinstance(pyro_support, property):
        assert type(support).__name__ == type(pyro_support).__name__
