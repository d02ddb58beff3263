from __future__ import annotations

import functools
import warnings
from typing import Any

import pyro
import pyro.distributions
import pyro.poutine
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime
from tests.parity._backends import EMBER, PYRO, Backend, assert_traces_match, run_both
from tests.poutine._forms import Compose, round_trip, traced_composition


def model() -> tuple[torch.Tensor, torch.Tensor]:
    z: torch.Tensor = ember.sample("z", dist.Normal(0.0, 1.0))
    with ember.plate("N", 2):
        y: torch.Tensor = ember.sample("y", dist.Normal(z, 1.0))
    return z, y


def plate_model() -> torch.Tensor:
    with ember.plate("N", 2):
        z: torch.Tensor = ember.sample("z", dist.Normal(0.0, 1.0))
    return z


def backend_model(b: Backend) -> Any:
    z = b.pyro.sample("z", b.dist.Normal(0.0, 1.0))
    with b.pyro.plate("N", 2):
        y = b.pyro.sample("y", b.dist.Normal(z, 1.0))
    return z, y


def backend_plate_model(b: Backend) -> Any:
    with b.pyro.plate("N", 2):
        z = b.pyro.sample("z", b.dist.Normal(0.0, 1.0))
    return b.pyro.sample("w", b.dist.Normal(z.sum(), 1.0))


FIVE = torch.tensor(5.0)


def _loc(tr: Any, name: str) -> torch.Tensor:
    fn: Any = tr.nodes[name]["fn"]
    loc: torch.Tensor = fn.loc
    return loc


# --- semantics -----------------------------------------------------------------------------------


def test_do_samples_a_fresh_site_and_continues_with_the_intervention() -> None:
    tr = poutine.trace(poutine.do(model, data={"z": FIVE})).get_trace()
    assert list(tr.nodes) == ["_INPUT", "z", "N", "y", "_RETURN"]
    assert tr.nodes["z"]["is_observed"] is False and tr.nodes["z"]["value"] != 5.0
    z, _ = tr.nodes["_RETURN"]["value"]
    assert z is FIVE
    assert torch.equal(_loc(tr, "y"), torch.full((2,), 5.0))


def test_trace_inside_do_records_the_counterfactual_site() -> None:
    with poutine.do(data={"z": FIVE}), poutine.trace() as tracer:
        model()
    tr = tracer.trace
    assert list(tr.nodes) == ["z", "z__CF", "N", "y"]
    cf = tr.nodes["z__CF"]
    assert cf["value"] is FIVE and cf["is_observed"] is True and cf["stop"] is True
    assert cf["cond_indep_stack"] == () and tr.nodes["z"]["cond_indep_stack"] == ()
    assert tr.nodes["z"]["_intervener_id"] == cf["_intervener_id"]


def test_do_matches_pyro_from_outside_and_inside() -> None:
    def program(b: Backend) -> Any:
        outer = b.poutine.trace(b.poutine.do(functools.partial(backend_model, b), data={"z": FIVE})).get_trace()
        with b.poutine.do(data={"z": FIVE}), b.poutine.trace() as inner:
            backend_model(b)
        return outer, inner.trace

    (ours_outer, ours_inner), (theirs_outer, theirs_inner) = run_both(program)
    assert_traces_match(ours_outer, theirs_outer)
    assert_traces_match(ours_inner, theirs_inner)


def test_copy_enters_each_plate_once() -> None:
    with poutine.trace() as outer:
        poutine.do(plate_model, data={"z": torch.tensor([1.0, 2.0])})()
    with poutine.do(data={"z": torch.tensor([1.0, 2.0])}), poutine.trace() as inner:
        plate_model()
    for tr in (outer.trace, inner.trace):
        assert [f.name for f in tr.nodes["z"]["cond_indep_stack"]] == ["N"]
        fn: Any = tr.nodes["z"]["fn"]
        assert fn.batch_shape == (2,)
    assert [f.name for f in inner.trace.nodes["z__CF"]["cond_indep_stack"]] == ["N"]


@pytest.mark.parametrize("inside", [False, True], ids=["do_outside_plate", "do_inside_plate"])
def test_do_with_plates_matches_pyro(inside: bool) -> None:
    def program(b: Backend) -> Any:
        value = torch.tensor([1.0, 2.0])
        if inside:
            with b.poutine.trace() as tracer, b.pyro.plate("N", 2), b.poutine.do(data={"z": value}):
                z = b.pyro.sample("z", b.dist.Normal(0.0, 1.0))
                b.pyro.sample("w", b.dist.Normal(z, 1.0))
        else:
            with b.poutine.trace() as tracer, b.poutine.do(data={"z": value}):
                backend_plate_model(b)
        return tracer.trace

    assert_traces_match(*run_both(program))


def test_counterfactual_condition_outside_do_matches_pyro() -> None:
    data = {"z": torch.tensor(1.0), "y": torch.tensor([2.0, 2.0])}

    def program(b: Backend) -> Any:
        intervened = b.poutine.do(functools.partial(backend_model, b), data={"z": FIVE})
        return b.poutine.trace(b.poutine.condition(intervened, data=data)).get_trace()

    ours, theirs = run_both(program)
    assert ours.nodes["z"]["is_observed"] and ours.nodes["z"]["value"] == 1.0
    assert ours.nodes["y"]["is_observed"] and torch.equal(ours.nodes["y"]["value"], data["y"])
    assert torch.equal(_loc(ours, "y"), torch.full((2,), 5.0))
    assert_traces_match(ours, theirs)


def test_counterfactual_condition_inside_do_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        conditioned = b.poutine.condition(functools.partial(backend_model, b), data={"z": torch.tensor(1.0)})
        return b.poutine.trace(b.poutine.do(conditioned, data={"z": FIVE})).get_trace()

    ours, theirs = run_both(program)
    assert ours.nodes["z"]["is_observed"] and ours.nodes["z"]["value"] == 1.0
    assert not ours.nodes["y"]["is_observed"]
    assert torch.equal(_loc(ours, "y"), torch.full((2,), 5.0))
    assert_traces_match(ours, theirs)


def test_python_number_becomes_a_float_tensor_unlike_pyro() -> None:
    # Deliberate deviation: Pyro turns 3 into an int64 tensor, which Normal cannot sample with.
    z, y = poutine.do(model, data={"z": 3})()
    assert z.dtype == torch.get_default_dtype() and z.item() == 3.0
    assert y.dtype == torch.float32
    pyro_data: Any = {"z": 3}
    pyro_z = pyro.poutine.do(lambda: pyro.sample("z", pyro.distributions.Normal(0.0, 1.0)), data=pyro_data)()
    assert pyro_z.dtype == torch.int64


def test_python_number_follows_the_default_dtype() -> None:
    torch.set_default_dtype(torch.float64)  # the conftest fixture restores float32
    z, _ = poutine.do(model, data={"z": 2.5})()
    assert z.dtype == torch.float64 and z.item() == 2.5
    flag = poutine.do(lambda: ember.sample("c", dist.Bernoulli(0.5)), data={"c": True})()
    assert flag.dtype == torch.float64 and flag.item() == 1.0


def test_none_leaves_the_site_alone() -> None:
    tr = poutine.trace(poutine.do(model, data={"z": None})).get_trace()
    assert list(tr.nodes) == ["_INPUT", "z", "N", "y", "_RETURN"]
    assert "_intervener_id" not in tr.nodes["z"] and not tr.nodes["z"]["is_observed"]


def test_do_leaves_params_alone() -> None:
    def m() -> torch.Tensor:
        return ember.param("p", torch.tensor(1.0))

    assert poutine.do(m, data={"p": FIVE})() == 1.0


def test_intervening_twice_warns_like_pyro_and_terminates() -> None:
    # Pyro emits the same warning, then recurses until RecursionError (each do re-splits the
    # other's copy); Ember splits once per do.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with poutine.trace() as outer:
            z, y = poutine.do(poutine.do(model, data={"z": 1.0}), data={"z": 2.0})()
    messages = [(w.category, str(w.message)) for w in caught]
    assert messages == [
        (
            RuntimeWarning,
            "Attempting to intervene on variable z multiple times,this is almost certainly incorrect behavior",
        )
    ]
    assert z.item() == 1.0 and torch.equal(_loc(outer.trace, "y"), torch.ones(2))
    assert list(outer.trace.nodes) == ["z", "N", "y"]


def test_bad_intervention_raises_like_pyro_naming_the_site() -> None:
    # Ember checks the value before splitting the site, so unlike Pyro it has not already
    # sampled (and traced) the fresh copy when it raises; only the first line is shared.
    errors: list[BaseException] = []
    for b in (EMBER, PYRO):
        wrapped = b.poutine.trace(b.poutine.do(functools.partial(backend_model, b), data={"z": "five"}))
        with pytest.raises(NotImplementedError) as info:
            wrapped.get_trace()
        errors.append(info.value)
    ours, theirs = (str(e).splitlines()[0] for e in errors)
    assert theirs == "Interventions of type <class 'str'> not implemented (yet)"
    assert ours == theirs + " at site 'z'"


def test_bad_intervention_inside_plate_leaves_no_state() -> None:
    with pytest.raises(NotImplementedError, match="at site 'z'"):
        poutine.do(plate_model, data={"z": [1.0, 2.0]})()  # type: ignore[dict-item]  # a list is not allowed
    assert runtime.get_stack() == () and runtime._DIM_ALLOCATOR._stack == []


# --- forms ---------------------------------------------------------------------------------------


def test_function_decorator_and_context_manager_forms() -> None:
    assert poutine.do(model, {"z": FIVE})()[0] is FIVE

    @poutine.do(data={"z": FIVE})
    def decorated() -> tuple[torch.Tensor, torch.Tensor]:
        return model()

    assert decorated()[0] is FIVE
    with poutine.do(data={"z": FIVE}) as messenger:
        assert model()[0] is FIVE
    assert isinstance(messenger, poutine.DoMessenger)


class Intervened:
    def __init__(self, shift: float) -> None:
        self.shift = shift

    @poutine.do(data={"z": FIVE})
    def run(self) -> torch.Tensor:
        return model()[0] + self.shift


def test_method_decorator_binds_self() -> None:
    assert Intervened(1.0).run() == 6.0


def test_wrapped_model_pickles() -> None:
    loaded = round_trip(poutine.do(model, data={"z": FIVE, "w": 2}))
    assert loaded.__name__ == "model"
    z, _ = loaded()
    assert z == 5.0
    tr = poutine.trace(loaded).get_trace()
    assert list(tr.nodes) == ["_INPUT", "z", "N", "y", "_RETURN"]


# --- composition ---------------------------------------------------------------------------------

DO = {"z": FIVE}


def _guide_trace(b: Backend) -> Any:
    def guide() -> None:
        b.pyro.sample("z", b.dist.Normal(3.0, 0.1))
        with b.pyro.plate("N", 2):
            b.pyro.sample("y", b.dist.Normal(0.0, 0.1))

    return b.poutine.trace(guide).get_trace()


COMPOSITIONS: dict[str, Compose] = {
    "trace_of_trace": lambda b, m: b.poutine.trace(b.poutine.do(m, data=DO)),
    "replay_outside": lambda b, m: b.poutine.replay(b.poutine.do(m, data=DO), trace=_guide_trace(b)),
    "replay_inside": lambda b, m: b.poutine.do(b.poutine.replay(m, trace=_guide_trace(b)), data=DO),
    "block_outside": lambda b, m: b.poutine.block(b.poutine.do(m, data=DO), hide=["z"]),
    "block_inside": lambda b, m: b.poutine.do(b.poutine.block(m, hide=["z"]), data=DO),
    "block_all_inside": lambda b, m: b.poutine.do(b.poutine.block(m), data=DO),
    "condition_y_outside": lambda b, m: b.poutine.condition(b.poutine.do(m, data=DO), data={"y": torch.zeros(2)}),
}


@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_composition_matches_pyro(name: str) -> None:
    program = traced_composition(COMPOSITIONS[name], backend_model)
    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)


def test_replayed_fresh_site_takes_the_guide_value() -> None:
    guide_tr = poutine.trace(lambda: ember.sample("z", dist.Normal(3.0, 0.1))).get_trace()
    tr = poutine.trace(poutine.replay(poutine.do(model, data=DO), trace=guide_tr)).get_trace()
    assert tr.nodes["z"]["value"] is guide_tr.nodes["z"]["value"]
    assert tr.nodes["_RETURN"]["value"][0] is FIVE


def test_block_inside_hides_the_site_from_do() -> None:
    z, _ = poutine.do(poutine.block(model, hide=["z"]), data=DO)()
    assert z != 5.0
    tr = poutine.trace(poutine.block(poutine.do(model, data=DO), hide=["z"])).get_trace()
    assert "z" not in tr and torch.equal(_loc(tr, "y"), torch.full((2,), 5.0))

