"""ember.infer.util: validation switches, plate-aware sums, and the model/guide checks."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import pyro
import pyro.util
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import util
from ember.infer.enum import get_importance_trace
from ember.poutine import runtime
from ember.poutine.message import CondIndepStackFrame, InferDict, new_message
from tests.parity._backends import Backend, run_both


def test_torch_item_sum_exp_backward() -> None:
    assert util.torch_item(torch.tensor(2.5)) == 2.5 and util.torch_item(1.5) == 1.5
    assert util.torch_sum(torch.ones(2, 3, 4), [-1, -3, -5]).shape == (3,)
    assert util.torch_sum(torch.ones(2), []).shape == (2,)
    assert util.torch_exp(0.0) == 1.0
    assert torch.equal(torch.as_tensor(util.torch_exp(torch.zeros(2))), torch.ones(2))
    x = torch.tensor(3.0, requires_grad=True)
    util.torch_backward(x * x)
    util.torch_backward(1.0)  # a number: nothing to do
    util.torch_backward(torch.tensor(1.0))  # no graph: nothing to do
    assert x.grad is not None and x.grad.item() == 6.0


def test_zero_grads_replaces_existing_gradients_with_zeros() -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    torch.autograd.backward((a * 3).sum())
    util.zero_grads([a, b])
    assert a.grad is not None and torch.equal(a.grad, torch.zeros(2))
    assert b.grad is None


def test_enable_validation_switches_only_the_infer_flag() -> None:
    util.enable_validation(False)
    assert not util.is_validation_enabled() and not runtime.is_infer_validation_enabled()
    assert runtime.is_validation_enabled()  # poutine's flag is untouched
    with util.validation_enabled():
        assert util.is_validation_enabled()
    assert not util.is_validation_enabled()
    util.enable_validation(True)
    with pytest.raises(KeyError), util.validation_enabled(False):
        assert not util.is_validation_enabled()
        raise KeyError("restored even on error")
    assert util.is_validation_enabled()
    ember.enable_validation(False)
    assert not ember.infer.is_validation_enabled()


def _frame(name: str, dim: int, size: int) -> CondIndepStackFrame:
    return CondIndepStackFrame(name, dim, size, 0)


def test_multi_frame_tensor_sums_over_plates_the_target_does_not_share() -> None:
    outer, inner = _frame("outer", -2, 2), _frame("inner", -1, 3)
    value = torch.arange(6.0).reshape(2, 3)
    costs = util.MultiFrameTensor(((outer, inner), value), ((outer,), torch.ones(2, 1)), ((), torch.tensor(10.0)))
    costs.add(((inner, outer), value))  # same plate set, any order: summed into one entry
    assert len(costs) == 3
    assert torch.equal(costs[frozenset({outer, inner})], 2 * value)
    assert torch.allclose(torch.as_tensor(costs.sum_to(())), torch.tensor(2 * 15.0 + 2 + 10))
    by_outer = torch.as_tensor(costs.sum_to((outer,)))
    assert torch.equal(by_outer, torch.tensor([[2 * 3.0 + 1 + 10], [2 * 12.0 + 1 + 10]]))
    assert torch.equal(torch.as_tensor(costs.sum_to((outer, inner))), 2 * value + 11)
    assert util.MultiFrameTensor().sum_to(()) == 0.0
    assert repr(util.MultiFrameTensor(((), torch.ones(())))) == "MultiFrameTensor((set(), ...))"


def test_multi_frame_tensor_ignores_sequential_frames() -> None:
    sequential = CondIndepStackFrame("seq", None, 3, 1)
    costs = util.MultiFrameTensor(((sequential,), torch.ones(())))
    assert list(costs) == [frozenset()]


def _plated_model() -> None:
    ember.sample("a", dist.Normal(0.0, 1.0))
    with ember.plate("outer", 2, dim=-2):
        ember.sample("b", dist.Normal(0.0, 1.0))
        with ember.plate("inner", 3):
            ember.sample("c", dist.Normal(0.0, 1.0))


def test_get_plate_stacks_and_dependent_plate_dims() -> None:
    tr = poutine.trace(_plated_model).get_trace()
    stacks = util.get_plate_stacks(tr)
    assert {name: [f.name for f in frames] for name, frames in stacks.items()} == {
        "a": [],
        "b": ["outer"],
        "c": ["outer", "inner"],
    }
    sites = list(tr.nodes.values())
    assert util.get_dependent_plate_dims(sites) == [-2, -1]
    assert util.get_dependent_plate_dims([tr.nodes["c"]]) == []
    assert util.get_dependent_plate_dims([]) == []


def _shape_site(log_prob_shape: tuple[int, ...], *frames: CondIndepStackFrame, enum_dim: int | None = None) -> Any:
    infer: InferDict = {} if enum_dim is None else {"_enumerate_dim": enum_dim}
    msg = new_message("sample", "x", dist.Normal(torch.zeros(log_prob_shape), 1.0), infer=infer)
    msg["cond_indep_stack"] = frames
    msg["log_prob"] = torch.zeros(log_prob_shape)
    return msg


def test_check_site_shape_accepts_plate_shapes_and_broadcasts_left_of_max_plate_nesting() -> None:
    util.check_site_shape(_shape_site((2, 3), _frame("a", -2, 2), _frame("b", -1, 3)), 2)
    util.check_site_shape(_shape_site((1, 3), _frame("b", -1, 3)), 2)
    util.check_site_shape(_shape_site((5, 7, 3), _frame("b", -1, 3)), 1)  # (5, 7) lie left of the plates
    with pytest.raises(ValueError, match="invalid log_prob shape"):  # no dim may broadcast then
        util.check_site_shape(_shape_site((4, 3), _frame("b", -1, 3)), math.inf)


def test_check_site_shape_errors_have_pyros_text() -> None:
    with pytest.raises(ValueError, match=re.escape('at site "x", invalid log_prob shape\n  Expected [2], actual [3]')):
        util.check_site_shape(_shape_site((3,), _frame("b", -1, 2)), 1)
    with pytest.raises(ValueError, match='at site "x", plate stack overflow\n  Try increasing max_plate_nesting to at least 2'):
        util.check_site_shape(_shape_site((2, 3), _frame("a", -2, 2), _frame("b", -1, 3)), 1)
    with pytest.raises(ValueError, match=re.escape('at site "x" within plate("b", dim=-1), dim collision')):
        util.check_site_shape(_shape_site((3,), _frame("a", -1, 3), _frame("b", -1, 3)), 1)
    with pytest.raises(ValueError, match='Enumeration dim conflict at site "x"\n  Try increasing pyro.markov history size'):
        util.check_site_shape(_shape_site((2, 3), _frame("b", -1, 3), enum_dim=-2), 1)


def test_check_site_shape_message_matches_pyro_verbatim() -> None:
    def program(b: Backend) -> str:
        def model() -> None:
            with b.pyro.plate("N", 2):
                b.pyro.sample("x", b.dist.Normal(0.0, 1.0))

        tr = b.poutine.trace(model).get_trace()
        tr.nodes["x"]["log_prob"] = torch.zeros(3)
        check = util.check_site_shape if b.name == "ember" else pyro.util.check_site_shape
        with pytest.raises(ValueError) as info:
            check(tr.nodes["x"], 1)
        return str(info.value)

    ours, theirs = run_both(program)
    assert ours == theirs


def _traces(model: Callable[[], Any], guide: Callable[[], Any]) -> tuple[Any, Any]:
    guide_tr = poutine.trace(guide).get_trace()
    model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace()
    return model_tr, guide_tr


def test_check_model_guide_match_warns_about_unmatched_sites() -> None:
    def model() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0))
        ember.sample("b", dist.Normal(0.0, 1.0))

    def guide() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0))
        ember.sample("c", dist.Normal(0.0, 1.0))

    # Traced first: replaying the guide's 'c' into the model warns on its own (Ember only).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traces = _traces(model, guide)
    with pytest.warns(UserWarning) as record:
        util.check_model_guide_match(*traces)
    assert [str(w.message) for w in record] == [
        "Found non-auxiliary vars in guide but not model, consider marking these infer={'is_auxiliary': True}:\n{'c'}",
        "Found vars in model but not guide: {'b'}",
    ]


def test_check_model_guide_match_warns_about_auxiliary_model_sites_and_guide_plates() -> None:
    def model() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0))

    def guide() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})
        with ember.plate("data", 3):
            pass

    with pytest.warns(UserWarning) as record:
        util.check_model_guide_match(*_traces(model, guide))
    assert [str(w.message) for w in record] == [
        "Found auxiliary vars in the model: {'a'}",
        "Found plate statements in guide but not model: {'data'}",
    ]


def test_check_model_guide_match_is_silent_for_matching_pairs_and_enumerated_model_sites() -> None:
    def model() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0))
        ember.sample("e", dist.Bernoulli(0.5), infer={"_enumerate_dim": -1})
        with ember.plate("data", 3):
            ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.zeros(3))

    def guide() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0))
        ember.sample("aux", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        util.check_model_guide_match(*_traces(model, guide))


def test_check_model_guide_match_errors() -> None:
    def model() -> None:
        ember.sample("a", dist.Normal(torch.zeros(2), 1.0).to_event(1))

    def guide_event() -> None:
        ember.sample("a", dist.Normal(torch.zeros(2), 1.0))

    def guide_shape() -> None:
        ember.sample("a", dist.Normal(torch.zeros(3), 1.0).to_event(1))

    with pytest.raises(ValueError, match="^Model and guide event_dims disagree at site 'a': 1 vs 0$"):
        util.check_model_guide_match(*_traces(model, guide_event))
    with pytest.raises(ValueError, match=re.escape("Model and guide shapes disagree at site 'a': torch.Size([2]) vs torch.Size([3])")):
        util.check_model_guide_match(*_traces(model, guide_shape))


def test_check_model_guide_match_lets_dims_left_of_max_plate_nesting_broadcast() -> None:
    def model() -> None:
        with ember.plate("p", 3):
            ember.sample("a", dist.Normal(torch.zeros(4, 3), 1.0))

    def guide() -> None:
        with ember.plate("p", 3):
            ember.sample("a", dist.Normal(torch.zeros(1, 3), 1.0))

    model_tr, guide_tr = _traces(model, guide)
    util.check_model_guide_match(model_tr, guide_tr, max_plate_nesting=1)
    with pytest.raises(ValueError, match="Model and guide shapes disagree at site 'a'"):
        util.check_model_guide_match(model_tr, guide_tr, max_plate_nesting=2)


def test_check_model_guide_match_requires_has_rsample_on_guide_factors() -> None:
    def model() -> None:
        pass

    def guide(has_rsample: bool | None) -> None:
        ember.factor("f", torch.tensor(0.0), has_rsample=has_rsample)

    guide_tr = poutine.trace(guide).get_trace(None)
    model_tr = poutine.trace(model).get_trace()
    with pytest.raises(ValueError, match=re.escape('At guide site pyro.factor("f",...), missing specification of has_rsample.')):
        util.check_model_guide_match(model_tr, guide_tr)
    util.check_model_guide_match(model_tr, poutine.trace(guide).get_trace(True))


def test_check_model_guide_match_rejects_model_side_sequential_enumeration() -> None:
    def model() -> None:
        ember.sample("s", dist.Bernoulli(0.5), infer={"enumerate": "sequential"})

    with pytest.raises(NotImplementedError, match="At site 's', model-side sequential enumeration is not implemented"):
        util.check_model_guide_match(*_traces(model, lambda: None))


def test_check_model_guide_match_warnings_match_pyro() -> None:
    def program(b: Backend) -> list[str]:
        def model() -> None:
            b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
            b.pyro.sample("b", b.dist.Normal(0.0, 1.0))

        def guide() -> None:
            b.pyro.sample("c", b.dist.Normal(0.0, 1.0))
            with b.pyro.plate("data", 2):
                pass

        guide_tr = b.poutine.trace(guide).get_trace()
        model_tr = b.poutine.trace(b.poutine.replay(model, trace=guide_tr)).get_trace()
        check = util.check_model_guide_match if b.name == "ember" else pyro.util.check_model_guide_match
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            check(model_tr, guide_tr)
        return [str(w.message) for w in record]

    ours, theirs = run_both(program)
    assert ours == theirs and len(ours) == 3


def test_check_if_enumerated_repeats_pyros_text() -> None:
    def guide() -> None:
        ember.sample("x", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})
        ember.sample("y", dist.Bernoulli(0.5), infer={"enumerate": "sequential"})

    tr = poutine.trace(guide).get_trace()
    with pytest.warns(UserWarning) as record:
        util.check_if_enumerated(tr)
    expected = "xFound sample sites configured for enumeration:, y\nIf you want to enumerate sites, you need to use TraceEnum_ELBO instead."
    assert [str(w.message) for w in record] == [expected]
    pyro_guide = pyro.poutine.trace(
        lambda: [
            pyro.sample("x", pyro.distributions.Bernoulli(0.5), infer={"enumerate": "parallel"}),
            pyro.sample("y", pyro.distributions.Bernoulli(0.5), infer={"enumerate": "sequential"}),
        ]
    ).get_trace()
    with pytest.warns(UserWarning) as pyro_record:
        pyro.util.check_if_enumerated(pyro_guide)
    assert str(pyro_record[0].message) == expected


def test_check_fully_reparametrized() -> None:
    def guide() -> None:
        ember.sample("r", dist.Normal(0.0, 1.0))
        ember.sample("s", dist.Bernoulli(0.5))

    tr = poutine.trace(guide).get_trace()
    tr.compute_score_parts()
    util.check_fully_reparametrized(tr.nodes["r"])
    with pytest.raises(NotImplementedError, match="^All distributions in the guide must be fully reparameterized.$"):
        util.check_fully_reparametrized(tr.nodes["s"])


def test_is_identically_zero_is_reexported() -> None:
    assert util.is_identically_zero(0) and not util.is_identically_zero(torch.tensor(0.0))


def test_get_importance_trace_validates_shapes_with_pyros_error() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(torch.zeros(3), 1.0))

    with pytest.raises(ValueError, match='at site "x", invalid log_prob shape'):
        get_importance_trace("flat", 1, model, model, (), {})
    util.enable_validation(False)
    get_importance_trace("flat", 1, model, model, (), {})  # unchecked when validation is off
