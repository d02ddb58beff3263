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
