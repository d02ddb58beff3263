from __future__ import annotations

from typing import Any, Callable

import pyro.infer.reparam as pyro_reparam
import pytest
import torch
from torch.distributions import constraints

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import LocScaleReparam
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both

LOC = torch.tensor([0.5, -1.0, 2.0])
SCALE = torch.tensor([2.0, 0.5, 1.5])


def _trace(fn: Any, centered: Any, **kwargs: Any) -> Any:
    def model() -> None:
        ember.sample("x", fn)

    reparam = LocScaleReparam(centered=centered, **kwargs)
    return poutine.trace(poutine.reparam(model, {"x": reparam})).get_trace()


@pytest.mark.parametrize("centered", [0.0, 0.25, torch.tensor([0.0, 0.5, 0.9])])
@pytest.mark.parametrize(
    "make", [lambda: dist.Normal(LOC, SCALE), lambda: dist.StudentT(4.0, LOC, SCALE), lambda: dist.Laplace(LOC, SCALE)]
)
def test_density_matches_the_original_up_to_the_jacobian(make: Callable[[], Any], centered: Any) -> None:
    fn = make()
    tr = _trace(fn, centered)
    x, noise = tr.nodes["x"]["value"], tr.nodes["x_decentered"]["value"]
    c = torch.as_tensor(centered)
    assert torch.allclose(x, LOC + SCALE.pow(1 - c) * (noise - c * LOC))
    tr.compute_log_prob()
    # x = loc + scale**(1-c) * (noise - c*loc): log p(x) = log p(noise) - (1-c) log scale.
    expected = fn.log_prob(x) + (1 - c) * SCALE.log()
    assert torch.allclose(tr.nodes["x_decentered"]["log_prob"], expected, atol=1e-5)
    assert tr.nodes["x"]["log_prob_sum"] == 0.0
    assert tr.nodes["x"]["is_observed"] and tr.nodes["x"]["infer"] == {}


def test_centered_one_leaves_the_site_unchanged() -> None:
    fn = dist.Normal(LOC, SCALE)
    tr = _trace(fn, 1.0)
    assert list(tr.nodes) == ["_INPUT", "x", "_RETURN"]
    assert tr.nodes["x"]["fn"] is fn and not tr.nodes["x"]["is_observed"]


def test_learned_centering_is_a_unit_interval_param_per_event_element() -> None:
    fn = dist.Normal(LOC, SCALE).to_event(1)
    tr = _trace(fn, None)
    assert list(tr.nodes) == ["_INPUT", "x_centered", "x_decentered", "x", "_RETURN"]
    centered = tr.nodes["x_centered"]["value"]
    assert torch.equal(centered.detach(), torch.full((3,), 0.5))
    assert ember.get_param_store()._constraints["x_centered"] is constraints.unit_interval
    assert tr.nodes["x_decentered"]["fn"].event_dim == 1
    leaf = dict(ember.get_param_store().named_parameters())["x_centered"]
    (grad,) = torch.autograd.grad(torch.as_tensor(tr.log_prob_sum()), [leaf])  # reaches the centering
    assert grad.shape == (3,) and bool(grad.abs().sum() > 0)


def test_observed_site_is_mapped_to_the_decentered_space() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(LOC, SCALE), obs=torch.tensor([1.0, 2.0, 3.0]))

    tr = poutine.trace(poutine.reparam(model, {"x": LocScaleReparam(0.0)})).get_trace()
    assert tr.nodes["x_decentered"]["is_observed"]
    assert torch.allclose(tr.nodes["x_decentered"]["value"], (torch.tensor([1.0, 2.0, 3.0]) - LOC) / SCALE)


def test_explicit_shape_params() -> None:
    tr = _trace(dist.StudentT(4.0, LOC, SCALE), 0.0, shape_params=["df"])
    decentered = tr.nodes["x_decentered"]["fn"]
    assert torch.equal(decentered.df, torch.full((3,), 4.0)) and torch.equal(decentered.scale, torch.ones(3))


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(AssertionError, match=r"centered must lie in \[0, 1\], got 1.5"):
        LocScaleReparam(centered=1.5)
    with pytest.raises(AssertionError):
        LocScaleReparam(shape_params="df")  # a str, not a list of names
    with pytest.raises(AssertionError):
        LocScaleReparam(centered=1)  # an int, which Pyro rejects too


@pytest.mark.parametrize("centered", [None, 0.0, 0.6])
@pytest.mark.parametrize("family", ["Normal", "StudentT", "Cauchy"])
def test_parity_with_pyro(family: str, centered: float | None) -> None:
    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            with b.pyro.plate("p", 3):
                args = (LOC, SCALE) if family != "StudentT" else (3.0, LOC, SCALE)
                x = b.pyro.sample("x", getattr(b.dist, family)(*args))
                b.pyro.sample("y", b.dist.Normal(x, 1.0), obs=torch.zeros(3))

        reparameterized = b.poutine.reparam(model, {"x": reparams.LocScaleReparam(centered=centered)})
        return b.poutine.trace(reparameterized).get_trace()

    ours, theirs = run_both(program, seed=3)
    assert_traces_match(ours, theirs)
