"""StructuredReparam: Pyro's traces on the same seed, the change of variables exact, bad input."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.autoguide import AutoDiagonalNormal, AutoStructured
from ember.infer.reparam import StructuredReparam
from tests.parity._backends import EMBER, Backend, EmberState, assert_traces_match, run_both


def test_trace_and_transformed_samples_equal_pyros_on_the_same_seed() -> None:
    def program(b: Backend) -> tuple[Any, dict[str, torch.Tensor]]:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            loc = b.pyro.sample("loc", b.dist.Normal(0.0, 2.0))
            scale = b.pyro.sample("scale", b.dist.LogNormal(0.0, 1.0))
            with b.pyro.plate("data", 3):
                b.pyro.sample("z", b.dist.Normal(loc, scale))
                b.pyro.sample("y", b.dist.Normal(0.0, 1.0), obs=torch.tensor([0.1, 0.2, 0.3]))

        guide = b.infer.autoguide.AutoStructured(
            model, conditionals={"loc": "normal", "scale": "delta", "z": "mvn"}, dependencies="linear", init_scale=0.5
        )
        guide()
        # The two guides' set-ups draw differently (their prototype traces); the parity of
        # the guides themselves is tested with the autoguides.
        torch.manual_seed(9)
        structured = reparams.StructuredReparam(guide)
        tr = b.poutine.trace(structured.reparam(model)).get_trace()
        aux = {"loc_aux": torch.randn(1), "z_aux": torch.randn(3)}
        return tr, structured.transform_samples(aux)

    (ours, our_samples), (theirs, their_samples) = run_both(program, seed=8)
    assert list(ours.nodes) == ["_INPUT", "loc_aux", "z_aux", "loc", "scale", "data", "z", "y", "_RETURN"]
    assert_traces_match(ours, theirs)
    assert our_samples.keys() == their_samples.keys() == {"loc", "scale", "z"}
    for name in their_samples:
        assert torch.allclose(our_samples[name], their_samples[name], rtol=1e-5, atol=1e-6), name


def test_the_log_density_is_pyros_auxiliary_plus_model_minus_log_jacobian() -> None:
    """Pyro's semantics, kept: the trace over the auxiliary value u scores
    log N(u; 0, 1) + log p(x) - log |dx/du| (the guide's density terms reused), not the
    pushforward log p(x) + log |dx/du|; checked against an autograd Jacobian."""

    def model() -> None:
        ember.sample("x", dist.LogNormal(0.5, 0.6))

    guide = AutoStructured(model, conditionals="normal", init_scale=0.8)
    guide()
    structured = StructuredReparam(guide)
    reparam_model = structured.reparam(model)
    for value in [-1.3, 0.0, 0.4, 2.2]:
        u = torch.tensor([value], requires_grad=True)
        x = structured.transform_samples({"x_aux": u})["x"]
        (jacobian,) = torch.autograd.grad(x, [u])
        tr = poutine.trace(poutine.condition(reparam_model, {"x_aux": u.detach()})).get_trace()
        expected = dist.Normal(0.0, 1.0).log_prob(u.detach()) + dist.LogNormal(0.5, 0.6).log_prob(x.detach()) - jacobian.abs().log()
        assert torch.allclose(torch.as_tensor(tr.log_prob_sum()), expected.sum(), atol=1e-5)
        assert torch.allclose(tr.nodes["x"]["value"], x.detach())


def test_guides_that_do_not_fit_and_observed_sites_are_refused() -> None:
    def model(obs: torch.Tensor | None = None) -> None:
        ember.sample("x", dist.Normal(0.0, 1.0), obs=obs)

    with pytest.raises(TypeError, match="StructuredReparam expected an AutoStructured guide"):
        StructuredReparam(AutoDiagonalNormal(model))  # type: ignore[arg-type]  # the error under test
    guide = AutoStructured(model, conditionals="normal")
    guide()
    before = EmberState.capture()
    with pytest.raises(NotImplementedError, match=r"At pyro.sample\('x',...\), StructuredReparam does not support observe"):
        poutine.trace(StructuredReparam(guide).reparam(model)).get_trace(torch.tensor(0.5))
    assert EmberState.capture() == before
