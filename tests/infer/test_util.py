"""ember.infer.util: validation switches, plate-aware sums, and the model/guide checks."""

from __future__ import annotations

import importlib
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import pyro
import pyro.infer.util
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
from tests.parity._backends import EMBER, Backend, run_both


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


# ---------------------------------------------------------------------------------------------
# Dice


def _dice_program(b: Backend) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], list[Any]]:
    """Dice over a guide with a parallel-enumerated site, a multiply-sampled enumerated site,
    and Monte Carlo sites (score function and reparameterized) in a plate; the cost of each
    ordinal is its sites' log densities. Returns the expectation, its gradients and the
    per-site factors."""
    dice_cls: Any = util.Dice if b is EMBER else pyro.infer.util.Dice
    factor_fn: Any = util.compute_site_dice_factor if b is EMBER else pyro.infer.util.compute_site_dice_factor
    pa = torch.tensor(0.3, requires_grad=True)
    rate = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    probs = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
    loc = torch.tensor(0.5, requires_grad=True)

    def guide() -> None:
        a = b.pyro.sample("a", b.dist.Bernoulli(pa), infer={"enumerate": "parallel"})
        b.pyro.sample("c", b.dist.Categorical(probs), infer={"enumerate": "parallel", "num_samples": 2})
        with b.pyro.plate("data", 3):
            b.pyro.sample("n", b.dist.Poisson(rate + a))
            b.pyro.sample("z", b.dist.Normal(loc, 1.0))

    tr = b.poutine.trace(b.poutine.enum(guide, first_available_dim=-2)).get_trace()
    tr.compute_score_parts()
    tr.pack_tensors()
    ordering = {
        name: frozenset(tr.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized)
        for name, site in tr.nodes.items()
        if site["type"] == "sample"
    }
    costs: dict[frozenset[str], list[torch.Tensor]] = {}
    for name, site in tr.nodes.items():
        if site["type"] == "sample":
            costs.setdefault(ordering[name], []).append(site["packed"]["log_prob"])
    expected = dice_cls(tr, ordering).compute_expectation(costs)
    grads = torch.autograd.grad(expected, [pa, rate, probs, loc])
    factors = [factor_fn(site) for site in tr.nodes.values() if site["type"] == "sample"]
    return expected, grads, factors


def test_dice_expectation_gradients_and_site_factors_equal_pyros_on_the_same_seed() -> None:
    (ours, our_grads, our_factors), (theirs, their_grads, their_factors) = run_both(_dice_program, seed=0)
    assert torch.allclose(ours, theirs, atol=1e-5)
    for g_ours, g_theirs in zip(our_grads, their_grads):
        assert torch.allclose(g_ours, g_theirs, rtol=1e-5, atol=1e-5)
    for (lp_ours, denom_ours), (lp_theirs, denom_theirs) in zip(our_factors, their_factors):
        assert denom_ours == denom_theirs
        if isinstance(lp_theirs, torch.Tensor):
            assert isinstance(lp_ours, torch.Tensor) and lp_ours._pyro_dims == lp_theirs._pyro_dims  # type: ignore[attr-defined]  # packed tensors carry dim names
            assert torch.allclose(lp_ours, lp_theirs)
        else:
            assert lp_ours == lp_theirs == 0


def test_dice_is_the_exact_expectation_over_enumerated_values_with_score_function_gradients() -> None:
    """Enumerated a ~ Bernoulli(p), cost f(a) = (a + 2)^2: the expectation is exact and its
    gradient is f(1) - f(0). A Monte Carlo site contributes value 1 and gradient cost * dlog q."""
    p = torch.tensor(0.3, requires_grad=True)
    q = torch.tensor(0.6, requires_grad=True)

    def guide() -> None:
        ember.sample("a", dist.Bernoulli(p), infer={"enumerate": "parallel"})
        ember.sample("m", dist.Bernoulli(q))

    torch.manual_seed(1)
    tr = poutine.trace(poutine.enum(guide, first_available_dim=-1)).get_trace()
    tr.compute_score_parts()
    tr.pack_tensors()
    a = tr.nodes["a"]["value"]
    cost = (a.reshape(-1) + 2) ** 2
    cost._pyro_dims = tr.nodes["a"]["packed"]["log_prob"]._pyro_dims
    expected = util.Dice(tr, {"a": frozenset(), "m": frozenset()}).compute_expectation({frozenset(): [cost]})
    assert isinstance(expected, torch.Tensor)
    m = tr.nodes["m"]["value"]
    exact = 0.7 * 4.0 + 0.3 * 9.0
    assert expected.item() == pytest.approx(exact, rel=1e-6)
    grad_p, grad_q = torch.autograd.grad(expected, [p, q])
    assert grad_p.item() == pytest.approx(9.0 - 4.0, rel=1e-6)
    score = 1 / 0.6 if m.item() == 1 else -1 / 0.4
    assert grad_q.item() == pytest.approx(exact * score, rel=1e-5)


def test_sequential_enumeration_divides_by_the_number_of_values() -> None:
    def program(b: Backend) -> list[tuple[Any, Any]]:
        iterate: Any = importlib.import_module(f"{b.pyro.__name__}.infer.enum").iter_discrete_traces
        factor_fn: Any = util.compute_site_dice_factor if b is EMBER else pyro.infer.util.compute_site_dice_factor

        def guide() -> None:
            b.pyro.sample("a", b.dist.Categorical(torch.tensor([0.2, 0.3, 0.5])), infer={"enumerate": "sequential"})

        results = []
        for tr in iterate("flat", guide):
            tr.compute_score_parts()
            tr.pack_tensors()
            results.append(factor_fn(tr.nodes["a"]))
        return results

    ours, theirs = run_both(program)
    assert [denom for _, denom in ours] == [denom for _, denom in theirs] == [math.log(3)] * 3
    for (lp_ours, _), (lp_theirs, _) in zip(ours, theirs):
        assert torch.equal(torch.as_tensor(lp_ours), torch.as_tensor(lp_theirs))
