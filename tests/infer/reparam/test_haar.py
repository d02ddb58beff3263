"""HaarReparam: Pyro's traces on the same seed (event and batch dims), the density unchanged."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import HaarReparam
from ember.ops.tensor_utils import haar_transform
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize(("dim", "size"), [(-1, 5), (-2, 8)])
def test_trace_and_log_density_equal_pyros_on_the_same_seed(dim: int, size: int, flip: bool) -> None:
    shape = (size, 3) if dim == -2 else (3, size)

    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            with b.pyro.plate("p", 2, dim=-1):
                b.pyro.sample("x", b.dist.LogNormal(torch.linspace(-1.0, 1.0, size * 3).reshape(shape), 0.5).to_event(2))

        reparameterized = b.poutine.reparam(model, {"x": reparams.HaarReparam(dim=dim, flip=flip)})
        return b.poutine.trace(reparameterized).get_trace()

    ours, theirs = run_both(program, seed=4)
    assert list(ours.nodes) == ["_INPUT", "p", "x_haar", "x", "_RETURN"]
    assert_traces_match(ours, theirs)


def test_a_batch_dim_needs_the_experimental_flag_and_then_matches_pyro() -> None:
    def program(b: Backend, allow: bool) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            with b.pyro.plate("time", 6, dim=-1):
                b.pyro.sample("x", b.dist.Normal(torch.arange(6.0), 1.0))

        rep = reparams.HaarReparam(dim=-1, experimental_allow_batch=allow)
        return b.poutine.trace(b.poutine.reparam(model, {"x": rep})).get_trace()

    ours, theirs = run_both(lambda b: program(b, True), seed=0)
    assert_traces_match(ours, theirs)
    with pytest.raises(ValueError, match="At sample site 'x': cannot transform along a batch dimension"):
        program(EMBER, False)
    assert ember.poutine.runtime.get_stack() == ()


def test_the_site_is_the_inverse_transform_of_its_coefficients_with_the_same_density() -> None:
    fn = dist.Normal(torch.linspace(0.0, 3.0, 8), 0.7).to_event(1)

    def model() -> None:
        ember.sample("x", fn)

    tr = poutine.trace(poutine.reparam(model, {"x": HaarReparam()})).get_trace()
    x, coefficients = tr.nodes["x"]["value"], tr.nodes["x_haar"]["value"]
    assert torch.allclose(haar_transform(x), coefficients, atol=1e-6)
    tr.compute_log_prob()
    # An orthonormal transform: the coefficients' density is the site's.
    assert torch.allclose(tr.nodes["x_haar"]["log_prob"], fn.log_prob(x), atol=1e-5)
    assert float(tr.nodes["x"]["log_prob"]) == 0.0
