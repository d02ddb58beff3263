"""SplitReparam: Pyro's traces on the same seed, the model's density unchanged, the supports of
the pieces, and bad input refused."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pyro.infer.reparam.split as pyro_split
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.distributions import constraints
from ember.infer.reparam import SplitReparam
from ember.infer.reparam import split as split_module
from tests.parity._backends import EMBER, Backend, EmberState, assert_traces_match, run_both


def _program(observed: bool, support_fn: str = "default_support") -> Any:
    def program(b: Backend) -> Any:
        module: Any = split_module if b is EMBER else pyro_split
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        fn = b.dist.Normal(torch.arange(12.0).reshape(3, 4), 2.0).to_event(1)

        def model() -> None:
            with b.pyro.plate("p", 2, dim=-2):
                obs = torch.randn(2, 3, 4) if observed else None
                b.pyro.sample("x", fn.expand([2, 3]), obs=obs)

        def guide() -> None:
            with b.pyro.plate("p", 2, dim=-2):
                b.pyro.sample("x_split_0", b.dist.Normal(torch.zeros(2, 3, 1), 1.0).to_event(1))
                b.pyro.sample("x_split_1", b.dist.Normal(torch.zeros(2, 3, 3), 1.0).to_event(1))

        rep = reparams.SplitReparam([1, 3], -1, support_fn=getattr(module, support_fn))
        reparameterized = b.poutine.reparam(model, {"x": rep})
        if observed:
            return b.poutine.trace(reparameterized).get_trace()
        guide_trace = b.poutine.trace(guide).get_trace()
        return b.poutine.trace(b.poutine.replay(reparameterized, trace=guide_trace)).get_trace()

    return program


@pytest.mark.parametrize("support_fn", ["default_support", "same_support", "real_support"])
@pytest.mark.parametrize("observed", [False, True])
def test_trace_and_log_density_equal_pyros_on_the_same_seed(observed: bool, support_fn: str) -> None:
    ours, theirs = run_both(_program(observed, support_fn), seed=1)
    assert list(ours.nodes) == ["_INPUT", "p", "x_split_0", "x_split_1", "x", "_RETURN"]
    assert_traces_match(ours, theirs)


def test_the_model_density_is_the_original_density_of_the_joined_pieces() -> None:
    fn = dist.Gamma(torch.ones(5) * 2.0, 3.0).to_event(1)
    pieces = {"x_split_0": torch.rand(2) + 0.1, "x_split_1": torch.rand(3) + 0.1}

    def model() -> None:
        ember.sample("x", fn)

    tr = poutine.trace(poutine.condition(poutine.reparam(model, {"x": SplitReparam([2, 3], -1)}), data=pieces)).get_trace()
    x = torch.cat([pieces["x_split_0"], pieces["x_split_1"]])
    assert torch.equal(tr.nodes["x"]["value"], x)
    # The pieces' improper priors have density one: the whole density is the site's.
    assert torch.allclose(tr.log_prob_sum(), fn.log_prob(x))
    piece_fn: Any = tr.nodes["x_split_0"]["fn"]
    support = piece_fn.support
    assert support.base_constraint is constraints.nonnegative and support.reinterpreted_batch_ndims == 1


def test_default_support_cuts_cat_and_stack_supports_to_the_piece() -> None:
    # One constraint per position along the split dim, as the cut assumes.
    parts = [constraints.positive, constraints.positive, constraints.real, constraints.real, constraints.real]
    cat = constraints.cat(parts, dim=-1, lengths=[1] * 5)  # type: ignore[no-untyped-call]  # torch: unannotated
    fn: Any = dist.ImproperUniform(constraints.independent(cat, 1), (), (5,))  # type: ignore[no-untyped-call]  # torch: unannotated
    for piece_slice, values in [(slice(0, 2), [1.0, -2.0]), (slice(1, 3), [1.0, -2.0]), (slice(2, 5), [-1.0, -2.0, 0.0])]:
        ours: Any = split_module.default_support(fn, piece_slice, -1)
        theirs: Any = pyro_split.default_support(fn, piece_slice, -1)
        base: Any = ours.base_constraint
        x = torch.tensor(values)
        assert torch.equal(ours.check(x), theirs.check(x))
        assert type(ours) is constraints.independent and base.cseq == parts[piece_slice]
    first: Any = split_module.default_support(fn, slice(0, 2), -1)
    assert not bool(first.check(torch.tensor([1.0, -2.0])))
    stack = constraints.stack([constraints.positive, constraints.real, constraints.real], dim=-1)  # type: ignore[no-untyped-call]  # torch: unannotated
    fn = dist.ImproperUniform(stack, (), (3,))
    cut: Any = split_module.default_support(fn, slice(1, 3), -1)
    assert cut.cseq == [constraints.real, constraints.real]
    real: Any = split_module.real_support(fn)
    assert real.base_constraint is constraints.real and real.reinterpreted_batch_ndims == 1
    assert split_module.same_support(fn) is fn.support


def test_bad_configuration_and_sites_are_refused_naming_them() -> None:
    with pytest.raises(AssertionError, match="dim must be a negative int"):
        SplitReparam([1, 2], 0)
    with pytest.raises(AssertionError, match="sections must be a list of ints"):
        SplitReparam((1, 2), -1)  # type: ignore[arg-type]  # the error under test

    def scalar_model() -> None:
        ember.sample("s", dist.Normal(0.0, 1.0), obs=torch.tensor(1.0))

    def vector_model() -> None:
        ember.sample("v", dist.Normal(torch.zeros(4), 1.0).to_event(1), obs=torch.zeros(4))

    before = EmberState.capture()
    with pytest.raises(AssertionError, match=r"SplitReparam at site 's': cannot split dim -1 of a site with event shape \(\)"):
        poutine.trace(poutine.reparam(scalar_model, {"s": SplitReparam([1], -1)})).get_trace()
    with pytest.raises(AssertionError, match=r"at site 'v': sections \[1, 2\] do not add up to the size 4"):
        poutine.trace(poutine.reparam(vector_model, {"v": SplitReparam([1, 2], -1)})).get_trace()
    assert EmberState.capture() == before
