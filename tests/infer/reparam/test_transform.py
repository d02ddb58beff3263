from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch
from torch.distributions.transforms import AffineTransform, ExpTransform, StickBreakingTransform

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import TransformReparam
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both


def _trace(fn: Any, obs: torch.Tensor | None = None) -> Any:
    def model() -> None:
        ember.sample("x", fn, obs=obs)

    return poutine.trace(poutine.reparam(model, {"x": TransformReparam()})).get_trace()


def test_lognormal_density_matches_up_to_the_jacobian() -> None:
    fn = dist.LogNormal(torch.tensor([0.0, 1.0]), 0.5)
    tr = _trace(fn)
    x, base = tr.nodes["x"]["value"], tr.nodes["x_base"]["value"]
    assert torch.allclose(x, base.exp())
    tr.compute_log_prob()
    # x = exp(base): log p(x) = log p(base) - base.
    assert torch.allclose(tr.nodes["x_base"]["log_prob"] - base, fn.log_prob(x))
    assert tr.nodes["x"]["log_prob_sum"] == 0.0
    assert type(tr.nodes["x_base"]["fn"]).__name__ == "Normal"


def test_event_dims_follow_the_transforms() -> None:
    base: Any = dist.Normal(torch.zeros(3), 1.0).to_event(1)
    fn = dist.TransformedDistribution(base, [StickBreakingTransform()])
    tr = _trace(fn)
    assert tr.nodes["x_base"]["fn"].event_dim == 1 and tr.nodes["x_base"]["value"].shape == (3,)
    assert tr.nodes["x"]["value"].shape == (4,) and torch.allclose(tr.nodes["x"]["value"].sum(), torch.tensor(1.0))


def test_observed_value_is_mapped_to_the_base_space() -> None:
    fn = dist.TransformedDistribution(dist.Normal(0.0, 1.0), [ExpTransform(), AffineTransform(1.0, 2.0)])
    tr = _trace(fn, obs=torch.tensor(5.0))
    assert tr.nodes["x_base"]["is_observed"]
    assert torch.allclose(tr.nodes["x_base"]["value"], torch.tensor(2.0).log())


def test_independent_wrapper_is_kept() -> None:
    fn = dist.LogNormal(torch.zeros(2), 1.0).to_event(1)
    tr = _trace(fn)
    assert tr.nodes["x_base"]["fn"].event_dim == 1 and tr.nodes["x"]["fn"].event_dim == 1


def test_not_a_transformed_distribution_names_the_site() -> None:
    with pytest.raises(AssertionError, match="TransformReparam at sample site 'x' expects a TransformedDistribution, got Normal"):
        _trace(dist.Normal(0.0, 1.0))


@pytest.mark.parametrize("observed", [False, True])
def test_parity_with_pyro(observed: bool) -> None:
    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            with b.pyro.plate("p", 2):
                b.pyro.sample("x", b.dist.LogNormal(0.0, 1.0), obs=torch.tensor([1.0, 3.0]) if observed else None)
            base = b.dist.Normal(torch.zeros(3), 1.0).to_event(1)
            b.pyro.sample("s", b.dist.TransformedDistribution(base, [StickBreakingTransform()]))

        config = {"x": reparams.TransformReparam(), "s": reparams.TransformReparam()}
        return b.poutine.trace(b.poutine.reparam(model, config)).get_trace()

    ours, theirs = run_both(program, seed=5)
    assert_traces_match(ours, theirs)
