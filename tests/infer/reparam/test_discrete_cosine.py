from __future__ import annotations

import math
from typing import Any

import pyro.distributions.transforms as pyro_transforms
import pyro.infer.reparam as pyro_reparam
import pytest
import torch
from torch.distributions.transforms import AffineTransform

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import DiscreteCosineReparam, UnitJacobianReparam
from ember.infer.reparam.discrete_cosine import DiscreteCosineTransform
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both


@pytest.mark.parametrize("smooth", [0.0, 1.0, -1.0, 2.5])
@pytest.mark.parametrize("dim", [-1, -2])
def test_transform_matches_pyro_and_inverts(dim: int, smooth: float) -> None:
    x = torch.randn(2, 5, 4)
    ours = DiscreteCosineTransform(dim=dim, smooth=smooth)
    theirs = pyro_transforms.DiscreteCosineTransform(dim=dim, smooth=smooth)  # type: ignore[no-untyped-call]  # pyro is untyped
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert torch.allclose(ours.inv(ours(x)), x, atol=1e-5)
    assert ours.event_dim == -dim and ours.log_abs_det_jacobian(x, ours(x)).shape == x.shape[:dim]


def test_transform_is_orthonormal_without_smoothing() -> None:
    t = DiscreteCosineTransform()
    identity = torch.eye(6)
    matrix = t(identity)  # rows are the transforms of the basis vectors
    assert torch.allclose(matrix @ matrix.T, identity, atol=1e-6)
    assert torch.allclose(t(torch.ones(4)), torch.tensor([2.0, 0.0, 0.0, 0.0]), atol=1e-6)


def test_transform_equality_and_cache() -> None:
    t = DiscreteCosineTransform(dim=-2, smooth=1.0)
    assert t == DiscreteCosineTransform(dim=-2, smooth=1) and hash(t) == hash(DiscreteCosineTransform(-2, 1.0))
    assert t != DiscreteCosineTransform(dim=-1, smooth=1.0)
    cached = t.with_cache()
    assert cached._cache_size == 1 and cached.with_cache() is cached
    with pytest.raises(AssertionError, match="dim must be a negative int"):
        DiscreteCosineTransform(dim=0)
    with pytest.raises(ValueError, match="Too few dimensions"):
        t.forward_shape(torch.Size([3]))


def _trace(fn: Any, reparam: Any) -> Any:
    def model() -> None:
        ember.sample("x", fn)

    return poutine.trace(poutine.reparam(model, {"x": reparam})).get_trace()


def test_reparam_keeps_the_density() -> None:
    fn = dist.Normal(torch.linspace(0.0, 1.0, 8), 0.5).to_event(1)
    tr = _trace(fn, DiscreteCosineReparam(smooth=1.0))
    assert list(tr.nodes) == ["_INPUT", "x_dct", "x", "_RETURN"]
    x = tr.nodes["x"]["value"]
    assert torch.allclose(DiscreteCosineTransform(smooth=1.0)(x), tr.nodes["x_dct"]["value"], atol=1e-5)
    tr.compute_log_prob()
    assert torch.allclose(tr.nodes["x_dct"]["log_prob"], fn.log_prob(x), atol=1e-5)  # unit Jacobian
    assert tr.nodes["x"]["log_prob"] == 0.0  # a Delta at its own value


def test_constrained_support_is_unconstrained_first() -> None:
    fn = dist.LogNormal(torch.zeros(4), 1.0).to_event(1)
    tr = _trace(fn, DiscreteCosineReparam())
    x, y = tr.nodes["x"]["value"], tr.nodes["x_dct"]["value"]
    assert torch.allclose(DiscreteCosineTransform()(x.log()), y, atol=1e-5)
    tr.compute_log_prob()
    # y = dct(log x): log p(y) = log p(x) + sum(log x).
    assert torch.allclose(tr.nodes["x_dct"]["log_prob"], fn.log_prob(x) + x.log().sum(), atol=1e-4)


def test_batch_dim_needs_the_experimental_flag() -> None:
    def model() -> None:
        with ember.plate("time", 5):
            ember.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="At sample site 'x': cannot transform along a batch dimension"):
        poutine.reparam(model, {"x": DiscreteCosineReparam()})()
    tr = poutine.trace(poutine.reparam(model, {"x": DiscreteCosineReparam(experimental_allow_batch=True)})).get_trace()
    transformed: Any = tr.nodes["x_dct"]["fn"]
    assert transformed.event_shape == (5,) and tr.nodes["x_dct"]["cond_indep_stack"] == ()
    assert tr.nodes["x"]["value"].shape == (5,)


def test_unit_jacobian_reparam_with_any_unit_transform() -> None:
    flip = UnitJacobianReparam(AffineTransform(0.0, -1.0), suffix="flipped")
    tr = _trace(dist.Normal(3.0, 1.0), flip)
    assert list(tr.nodes) == ["_INPUT", "x_flipped", "x", "_RETURN"]
    assert tr.nodes["x"]["value"] == -tr.nodes["x_flipped"]["value"]
    tr.compute_log_prob()
    assert torch.allclose(tr.nodes["x_flipped"]["log_prob"], dist.Normal(3.0, 1.0).log_prob(tr.nodes["x"]["value"]))


@pytest.mark.parametrize("batch", [False, True])
def test_parity_with_pyro(batch: bool) -> None:
    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            if batch:
                with b.pyro.plate("series", 2, dim=-2), b.pyro.plate("time", 6, dim=-1):
                    b.pyro.sample("x", b.dist.Normal(0.0, 1.0))
            else:
                loc = torch.arange(6.0).expand(2, 6)
                b.pyro.sample("x", b.dist.LogNormal(loc * 0.1, 1.0).to_event(2))
            b.pyro.sample("y", b.dist.Normal(0.0, 1.0), obs=torch.tensor(math.pi))

        reparam = reparams.DiscreteCosineReparam(dim=-1, smooth=1.0, experimental_allow_batch=batch)
        return b.poutine.trace(b.poutine.reparam(model, {"x": reparam})).get_trace()

    ours, theirs = run_both(program, seed=2)
    assert_traces_match(ours, theirs)
