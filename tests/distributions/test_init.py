"""Tests for the public surface of ember.distributions (its __init__ module)."""

from __future__ import annotations

import ast
import importlib
import pathlib
from typing import Any

import torch

import ember.distributions as dist

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")

_PACKAGE_DIR = pathlib.Path(dist.__file__).parent

REQUIRED = {
    "Delta",
    "Distribution",
    "ExpandedDistribution",
    "MaskedDistribution",
    "ScoreParts",
    "TorchDistribution",
    "TorchDistributionMixin",
    "Unit",
    "biject_to",
    "broadcast_shape",
    "constraints",
    "enable_validation",
    "is_identically_one",
    "is_identically_zero",
    "is_validation_enabled",
    "kl_divergence",
    "register_kl",
    "scale_and_mask",
    "sum_rightmost",
    "transform_to",
    "transforms",
    "validation_enabled",
}


def test_all_is_complete_and_resolvable() -> None:
    assert len(dist.__all__) == len(set(dist.__all__))
    assert REQUIRED <= set(dist.__all__)
    for name in dist.__all__:
        assert hasattr(dist, name), name


def test_pyro_public_names_used_by_models_exist() -> None:
    for name in REQUIRED - {"ScoreParts", "kl_divergence", "biject_to", "transform_to"}:
        if hasattr(pyro_dist, name):
            assert hasattr(dist, name)
    assert dist.constraints.positive is torch.distributions.constraints.positive
    assert dist.transforms.ExpTransform is torch.distributions.transforms.ExpTransform


def test_package_imports_only_torch_typing_extensions_stdlib_and_itself() -> None:
    for path in sorted(_PACKAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                root = module.split(".")[0]
                assert root not in {"pyro", "numpy"}, f"{path.name} imports {module}"
                if root == "ember":
                    # Only the layers below: ember.ops and ember._util.
                    allowed = ("ember.distributions", "ember.ops", "ember._util")
                    assert module.startswith(allowed), f"{path.name} imports {module}"


def test_drop_in_replacement_for_a_pyro_style_snippet() -> None:
    torch.manual_seed(0)
    data = torch.randn(10)
    loc = dist.Normal(0.0, 10.0).sample()
    d = dist.Normal(loc, 1.0).expand([10]).to_event(1)
    assert d.log_prob(data).shape == ()
    assert dist.Bernoulli(0.5).enumerate_support().tolist() == [0.0, 1.0]
    with dist.validation_enabled(False):
        assert not dist.is_validation_enabled()
    guide = dist.Delta(loc)
    assert torch.equal(guide.sample(), loc)


ZOO_B = [
    "AVFMultivariateNormal",
    "CoalescentRateLikelihood",
    "CoalescentTimes",
    "CoalescentTimesWithRate",
    "DiscreteHMM",
    "GammaGaussianHMM",
    "GaussianHMM",
    "GaussianMRF",
    "IndependentHMM",
    "LinearHMM",
    "LKJ",
    "LKJCorrCholesky",
    "MultivariateStudentT",
    "OMTMultivariateNormal",
    "OneOneMatching",
    "OneTwoMatching",
    "ProjectedNormal",
    "SineBivariateVonMises",
    "SineSkewed",
    "SpanningTree",
    "VonMises3D",
]


def test_structured_distributions_exist_with_pyro_constructor_signatures() -> None:
    import inspect

    for name in ZOO_B:
        ours, theirs = getattr(dist, name), getattr(pyro_dist, name)
        assert name in dist.__all__
        ours_params = inspect.signature(ours.__init__).parameters
        theirs_params = inspect.signature(theirs.__init__).parameters
        assert list(ours_params) == list(theirs_params), name
        for key, parameter in theirs_params.items():
            assert ours_params[key].kind == parameter.kind, (name, key)
            assert ours_params[key].default == parameter.default, (name, key)
        if isinstance(theirs, type) and issubclass(theirs, torch.distributions.Distribution):
            assert issubclass(ours, torch.distributions.Distribution) and issubclass(ours, dist.TorchDistributionMixin)


def test_structured_distributions_declare_pyro_class_attributes() -> None:
    for name in ZOO_B:
        ours, theirs = getattr(dist, name), getattr(pyro_dist, name)
        if not isinstance(getattr(theirs, "arg_constraints", None), dict):
            continue
        assert set(ours.arg_constraints) == set(theirs.arg_constraints), name
        for flag in ("has_rsample", "has_enumerate_support"):
            if isinstance(getattr(theirs, flag), bool):
                assert getattr(ours, flag) == getattr(theirs, flag), (name, flag)
