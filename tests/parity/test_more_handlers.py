"""Handlers beyond the core set (lift, do, infer_config, equalize, enum, markov) agree with pyro-ppl."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import torch

from tests.parity._backends import Backend, assert_traces_match, run_both


def _bind(b: Backend, model: Any) -> Any:
    return functools.partial(model, b.pyro, b.dist, b.poutine)


def param_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    s = pyro.param("s", torch.tensor(1.0), constraint=dist.constraints.positive)
    w = pyro.param("w", torch.zeros(2))
    s2 = pyro.param("s")
    with pyro.plate("N", 2):
        pyro.sample("x", dist.Normal(w, s), obs=torch.zeros(2))
    return s, w, s2


def test_lift_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        prior = {"s": b.dist.Exponential(1.0), "zz": b.dist.Normal(0.0, 1.0)}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tr = b.poutine.trace(b.poutine.lift(_bind(b, param_model), prior=prior)).get_trace()
        return tr, sorted(str(w.message) for w in caught)

    (ours, ours_warnings), (theirs, theirs_warnings) = run_both(program)
    assert ours_warnings == theirs_warnings
    assert_traces_match(ours, theirs)


def causal_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    with pyro.plate("N", 3):
        y = pyro.sample("y", dist.Normal(z, 1.0))
    return z, y


def test_do_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        outer = b.poutine.trace(b.poutine.do(_bind(b, causal_model), data={"z": torch.tensor(5.0)})).get_trace()
        inner = b.poutine.trace(_bind(b, causal_model))
        b.poutine.do(inner, data={"z": torch.tensor(5.0)})()
        counterfactual = b.poutine.condition(
            b.poutine.do(_bind(b, causal_model), data={"z": torch.tensor(5.0)}),
            data={"z": torch.tensor(1.0), "y": torch.zeros(3)},
        )
        return outer, inner.msngr.get_trace(), b.poutine.trace(counterfactual).get_trace()

    for ours, theirs in zip(*run_both(program)):
        assert_traces_match(ours, theirs)


def test_infer_config_matches_pyro() -> None:
    def config(msg: Any) -> Any:
        return {"foo": msg["type"], "enumerate": None} if msg["name"] != "N" else {}

    def program(b: Backend) -> Any:
        return b.poutine.trace(b.poutine.infer_config(_bind(b, param_model), config_fn=config)).get_trace()

    assert_traces_match(*run_both(program))


def equalize_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    a = pyro.sample("a_x", dist.Normal(0.0, 1.0))
    b = pyro.sample("b_x", dist.Normal(5.0, 3.0))
    c = pyro.sample("c_y", dist.Normal(0.0, 1.0))
    return a, b, c


def test_equalize_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        kept = b.poutine.equalize(_bind(b, equalize_model), ".*_x", keep_dist=True)
        dropped = b.poutine.equalize(_bind(b, equalize_model), [".*_x"])
        return b.poutine.trace(kept).get_trace(), b.poutine.trace(dropped).get_trace()

    for ours, theirs in zip(*run_both(program)):
        assert_traces_match(ours, theirs)


def hmm_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    x = 0
    with pyro.plate("seqs", 2, dim=-1):
        for t in poutine.markov(range(3)):
            x = pyro.sample(f"x_{t}", dist.Categorical(probs[x]), infer={"enumerate": "parallel"})
            pyro.sample(f"y_{t}", dist.Normal(x.float(), 1.0), obs=torch.zeros(2))
    return x


def test_enum_with_markov_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        enumerated = b.poutine.enum(_bind(b, hmm_model), first_available_dim=-2)
        tr = b.poutine.trace(enumerated).get_trace()
        dims = {
            name: (site["infer"].get("_enumerate_dim"), dict(site["infer"].get("_dim_to_id", {})))
            for name, site in tr.nodes.items()
            if site["type"] == "sample"
        }
        return tr, dims

    (ours, ours_dims), (theirs, theirs_dims) = run_both(program)
    assert ours_dims == theirs_dims
    assert_traces_match(ours, theirs)


def test_config_enumerate_matches_pyro() -> None:
    def model(pyro: Any, dist: Any, poutine: Any) -> None:
        pyro.sample("a", dist.Bernoulli(0.3))
        pyro.sample("b", dist.Normal(0.0, 1.0))
        pyro.sample("c", dist.Categorical(torch.ones(3)), infer={"enumerate": "sequential"})

    def program(b: Backend) -> Any:
        configured = b.infer.config_enumerate(_bind(b, model), default="parallel")
        return b.poutine.trace(configured).get_trace()

    assert_traces_match(*run_both(program))


def test_top_level_primitives_used_by_programs_exist_like_pyro() -> None:
    import ember
    import pyro

    used = ["markov", "do", "plate", "plate_stack", "sample", "param", "factor", "deterministic", "subsample"]
    missing = [name for name in used if hasattr(pyro, name) and not hasattr(ember, name)]
    assert missing == []
