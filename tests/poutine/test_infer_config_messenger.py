from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.message import InferDict, Message
from tests.parity._backends import Backend, assert_traces_match, run_both
from tests.poutine._forms import compositions, round_trip, traced_composition


def model() -> torch.Tensor:
    p = ember.param("p", torch.tensor(0.5))
    c: torch.Tensor = ember.sample("c", dist.Bernoulli(p))
    ember.sample("x", dist.Normal(c, 1.0), obs=torch.tensor(0.3))
    return c


def config_fn(msg: Message) -> InferDict:
    if msg["type"] == "param":
        return {"is_auxiliary": True}
    if msg["is_observed"]:
        return {}
    return {"enumerate": "parallel"}


def backend_model(b: Backend) -> Any:
    p = b.pyro.param("p", torch.tensor(0.5), constraint=b.dist.constraints.unit_interval)
    with b.pyro.plate("N", 2):
        c = b.pyro.sample("c", b.dist.Bernoulli(p), infer={"baseline": {"use_decaying_avg_baseline": True}})
        b.pyro.sample("x", b.dist.Normal(c, 1.0), obs=torch.tensor([0.3, 0.1]))
    return c


def tag(msg: Any) -> Any:
    return {"tmc": "mixture", "num_samples": len(msg["name"])}


# --- semantics -----------------------------------------------------------------------------------


def test_sample_and_param_sites_get_the_options() -> None:
    tr = poutine.trace(poutine.infer_config(model, config_fn)).get_trace()
    assert tr.nodes["p"]["infer"] == {"is_auxiliary": True}
    assert tr.nodes["c"]["infer"] == {"enumerate": "parallel"}
    assert tr.nodes["x"]["infer"] == {}


def test_options_merge_into_existing_ones_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.trace(b.poutine.infer_config(functools.partial(backend_model, b), tag)).get_trace()

    ours, theirs = run_both(program)
    assert ours.nodes["c"]["infer"] == {
        "baseline": {"use_decaying_avg_baseline": True},
        "tmc": "mixture",
        "num_samples": 1,
    }
    assert ours.nodes["p"]["infer"] == {"tmc": "mixture", "num_samples": 1}
    assert ours.nodes["N"]["infer"] == {"tmc": "mixture", "num_samples": 1}
    assert_traces_match(ours, theirs)


def test_infer_dict_is_updated_in_place() -> None:
    guide_tr = poutine.trace(lambda: ember.sample("c", dist.Bernoulli(0.5))).get_trace()
    shared = guide_tr.nodes["c"]["infer"]
    tr = poutine.trace(poutine.infer_config(poutine.replay(model, trace=guide_tr), config_fn)).get_trace()
    assert tr.nodes["c"]["infer"] is shared
    assert shared == {"enumerate": "parallel"}


def test_config_fn_sees_each_site_once() -> None:
    seen: list[tuple[str, str | None]] = []

    def record(msg: Message) -> InferDict:
        seen.append((msg["type"], msg["name"]))
        return {}

    poutine.infer_config(model, record)()
    assert seen == [("param", "p"), ("sample", "c"), ("sample", "x")]


# --- forms ---------------------------------------------------------------------------------------


def test_function_decorator_and_context_manager_forms() -> None:
    tr = poutine.trace(poutine.infer_config(model, config_fn)).get_trace()
    assert tr.nodes["c"]["infer"]["enumerate"] == "parallel"

    @poutine.infer_config(config_fn=config_fn)
    def decorated() -> torch.Tensor:
        return model()

    assert poutine.trace(decorated).get_trace().nodes["c"]["infer"] == {"enumerate": "parallel"}
    with poutine.trace() as tracer, poutine.infer_config(config_fn=config_fn) as messenger:
        model()
    assert tracer.trace.nodes["c"]["infer"] == {"enumerate": "parallel"}
    assert isinstance(messenger, poutine.InferConfigMessenger)


class Configured:
    def __init__(self, shift: float) -> None:
        self.shift = shift

    @poutine.infer_config(config_fn=config_fn)
    def run(self) -> torch.Tensor:
        return model() + self.shift


def test_method_decorator_binds_self() -> None:
    tr = poutine.trace(Configured(10.0).run).get_trace()
    assert tr.nodes["_RETURN"]["value"] >= 10.0
    assert tr.nodes["c"]["infer"] == {"enumerate": "parallel"}


def test_wrapped_model_pickles() -> None:
    loaded = round_trip(poutine.infer_config(model, config_fn))
    assert loaded.__name__ == "model"
    tr = poutine.trace(loaded).get_trace()
    assert tr.nodes["c"]["infer"] == {"enumerate": "parallel"}
    assert tr.nodes["p"]["infer"] == {"is_auxiliary": True}


# --- composition ---------------------------------------------------------------------------------


def _guide_trace(b: Backend) -> Any:
    def guide() -> None:
        with b.pyro.plate("N", 2):
            b.pyro.sample("c", b.dist.Bernoulli(0.9), infer={"enumerate": "sequential"})

    return b.poutine.trace(guide).get_trace()


COMPOSITIONS = compositions(
    lambda b, m: b.poutine.infer_config(m, tag), _guide_trace, data={"c": torch.ones(2)}, hide=["c"]
)


@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_composition_matches_pyro(name: str) -> None:
    program = traced_composition(COMPOSITIONS[name], backend_model)
    assert_traces_match(*run_both(program))


def test_block_inside_hides_sites_from_config_fn() -> None:
    tr = poutine.trace(poutine.infer_config(poutine.block(model, hide=["c"]), config_fn)).get_trace()
    assert "c" not in tr and tr.nodes["p"]["infer"] == {"is_auxiliary": True}
    inner = poutine.trace(model)
    poutine.infer_config(poutine.block(inner, hide=["c"]), config_fn)()
    assert inner.trace.nodes["c"]["infer"] == {}


def test_plate_inside_and_outside() -> None:
    def m() -> None:
        with ember.plate("N", 2):
            ember.sample("c", dist.Bernoulli(0.5))

    tr = poutine.trace(poutine.infer_config(m, config_fn)).get_trace()
    assert tr.nodes["c"]["infer"] == {"enumerate": "parallel"}
    # The plate's own subsample site is a sample site too.
    assert tr.nodes["N"]["infer"] == {"enumerate": "parallel"}
    with poutine.trace() as tracer, poutine.infer_config(config_fn=config_fn), ember.plate("M", 3):
        ember.sample("d", dist.Bernoulli(0.5))
    assert tracer.trace.nodes["d"]["infer"] == {"enumerate": "parallel"}
    assert tracer.trace.nodes["M"]["infer"] == {"enumerate": "parallel"}
