"""Autoguide helpers: nested attributes, tiling, entropy, support errors."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from pyro.ops.tensor_utils import periodic_repeat as pyro_periodic_repeat

import ember
import ember.distributions as dist
from ember.infer.autoguide import mean_field_entropy
from ember.infer.autoguide.utils import (
    deep_getattr,
    deep_setattr,
    eye_like,
    helpful_support_errors,
    periodic_repeat,
)
from ember.nn import PyroModule, PyroParam
from tests.infer.autoguide._models import autoguide
from tests.parity._backends import Backend, run_both


def test_deep_setattr_creates_pyro_module_parents() -> None:
    root = PyroModule("root")
    deep_setattr(root, "a.b.c", PyroParam(torch.ones(2)))
    deep_setattr(root, "a.d", PyroParam(torch.zeros(1)))
    assert type(deep_getattr(root, "a.b")) is PyroModule
    assert deep_getattr(root, "a.b.c").tolist() == [1.0, 1.0]
    assert sorted(root.state_dict()) == ["a.b.c_unconstrained", "a.d_unconstrained"]
    with pytest.raises(AttributeError):
        deep_getattr(root, "a.missing")


@pytest.mark.parametrize("size, dim", [(5, 0), (7, -1), (2, 1), (0, 0), (6, -2)])
def test_periodic_repeat_matches_pyro(size: int, dim: int) -> None:
    x = torch.arange(6.0).reshape(2, 3)
    expected = pyro_periodic_repeat(x, size, dim)  # type: ignore[no-untyped-call]  # pyro leaves it unannotated
    assert torch.equal(periodic_repeat(x, size, dim), expected)


def test_eye_like_follows_the_dtype() -> None:
    eye = eye_like(torch.zeros(1, dtype=torch.float64), 2, 3)
    assert eye.dtype == torch.float64 and eye.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_mean_field_entropy_matches_pyro() -> None:
    def program(backend: Backend) -> Any:
        pyro, d = backend.pyro, backend.dist

        def model(n: int) -> None:
            with pyro.plate("N", n, subsample_size=2):
                pyro.sample("b", d.Gamma(2.0, 1.0))
            pyro.sample("a", d.Normal(0.0, 2.0))

        strategies = autoguide(backend)
        return strategies.mean_field_entropy(model, (4,)), strategies.mean_field_entropy(model, (4,), ["a"])

    ours, theirs = run_both(program)
    for got, expected in zip(ours, theirs):
        assert torch.allclose(torch.as_tensor(got), torch.as_tensor(expected))
    assert mean_field_entropy(lambda: None, ()) == 0.0


def test_support_errors_pass_other_errors_through() -> None:
    site = {"name": "x", "fn": dist.Normal(0.0, 1.0)}
    with pytest.raises(NotImplementedError, match="other"), helpful_support_errors(site):
        raise NotImplementedError("other")
    sphere = {"name": "s", "fn": SimpleNamespace(support=dist.constraints.sphere)}  # e.g. ProjectedNormal
    with pytest.raises(ValueError, match="Continuous inference cannot handle spherical sample site 's'"):
        with helpful_support_errors(sphere):
            raise NotImplementedError


def test_store_is_untouched_by_helpers() -> None:
    deep_setattr(PyroModule("free"), "x", PyroParam(torch.ones(1)))
    assert list(ember.get_param_store()) == []
