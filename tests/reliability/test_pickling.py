"""Every trace Ember records pickles and loads back with equal values, also after ``detach_()``.

Values read from the param store carry ``.unconstrained``, a link back to their leaf; it
used to be a plain weak reference, so every trace holding a constrained param site (every
autoguide trace) failed to pickle.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.distributions import constraints

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import config_enumerate
from ember.infer.autoguide import (
    AutoDelta,
    AutoDiagonalNormal,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
    AutoNormalMessenger,
)
from ember.infer.reparam import LocScaleReparam
from ember.nn import PyroModule, PyroParam

DATA = torch.tensor([0.3, -1.2, 0.8, 2.0])


def model(data: torch.Tensor) -> None:
    scale = ember.param("scale", torch.tensor(1.5), constraint=constraints.positive)
    probs = ember.param("probs", torch.tensor([0.2, 0.8]), constraint=constraints.simplex)
    loc = ember.sample("loc", dist.Normal(0.0, 1.0))
    ember.sample("w", dist.Dirichlet(torch.ones(2)))
    with ember.plate("data", len(data), subsample_size=3) as idx:
        ember.sample("obs", dist.Normal(loc, scale), obs=data[idx])
    ember.deterministic("twice", 2 * loc)
    ember.factor("f", -(probs**2).sum())


def discrete_model(data: torch.Tensor) -> None:
    weights = ember.param("weights", torch.tensor([0.4, 0.6]), constraint=constraints.simplex)
    with ember.plate("data", len(data)):
        z = ember.sample("z", dist.Categorical(weights))
        ember.sample("obs", dist.Normal(torch.tensor([-1.0, 1.0])[z], 1.0), obs=data)


def markov_model() -> None:
    step = ember.param("step", torch.tensor(0.5), constraint=constraints.positive)
    x = torch.tensor(0.0)
    for t in poutine.markov(range(3)):
        x = ember.sample(f"x{t}", dist.Normal(x, step))


class Regressor(PyroModule):
    def __init__(self) -> None:
        super().__init__()
        self.scale = PyroParam(torch.tensor(0.7), constraint=constraints.positive)

    def forward(self, data: torch.Tensor) -> None:
        scale: torch.Tensor = self.scale  # type: ignore[assignment]  # a PyroParam reads as its tensor
        with ember.plate("data", len(data)):
            ember.sample("obs", dist.Normal(0.0, scale), obs=data)


def _autoguide_trace(cls: Callable[..., Any]) -> Callable[[], poutine.Trace]:
    def record() -> poutine.Trace:
        guide = cls(model)
        guide(DATA)
        recorded: poutine.Trace = poutine.trace(guide).get_trace(DATA)
        return recorded

    return record


RECORDERS: dict[str, Callable[[], poutine.Trace]] = {
    "model": lambda: poutine.trace(model).get_trace(DATA),
    "dense model": lambda: poutine.trace(model, graph_type="dense").get_trace(DATA),
    "param only": lambda: poutine.trace(model, param_only=True).get_trace(DATA),
    "enumerated": lambda: poutine.trace(
        poutine.enum(config_enumerate(discrete_model), first_available_dim=-2)
    ).get_trace(DATA),
    "markov": lambda: poutine.trace(markov_model).get_trace(),
    "do": lambda: poutine.trace(poutine.do(model, data={"loc": torch.tensor(1.0)})).get_trace(DATA),
    "reparam": lambda: poutine.trace(poutine.reparam(model, config={"loc": LocScaleReparam(0.5)})).get_trace(DATA),
    "PyroModule": lambda: poutine.trace(Regressor()).get_trace(DATA),
    "AutoNormal": _autoguide_trace(AutoNormal),
    "AutoDelta": _autoguide_trace(AutoDelta),
    "AutoDiagonalNormal": _autoguide_trace(AutoDiagonalNormal),
    "AutoMultivariateNormal": _autoguide_trace(AutoMultivariateNormal),
    "AutoLowRankMultivariateNormal": _autoguide_trace(AutoLowRankMultivariateNormal),
    "AutoNormalMessenger": _autoguide_trace(AutoNormalMessenger),
}


def _tensors(trace: poutine.Trace) -> dict[tuple[str, str], torch.Tensor]:
    found = {}
    for name, site in trace.nodes.items():
        for key in ("value", "log_prob", "unscaled_log_prob"):
            value = site.get(key)
            if isinstance(value, torch.Tensor):
                found[(name, key)] = value
    return found


def _round_trips(trace: poutine.Trace) -> list[poutine.Trace]:
    buffer = io.BytesIO()
    torch.save(trace, buffer)
    buffer.seek(0)
    return [pickle.loads(pickle.dumps(trace)), torch.load(buffer, weights_only=False)]


@pytest.mark.parametrize("detach", [False, True], ids=["live", "detached"])
@pytest.mark.parametrize("kind", sorted(RECORDERS))
def test_every_kind_of_trace_pickles_and_loads_back_with_equal_values(kind: str, detach: bool) -> None:
    trace = RECORDERS[kind]()
    trace.compute_log_prob()
    if detach:
        trace.detach_()
    expected = _tensors(trace)
    assert expected, "nothing to compare"
    for loaded in _round_trips(trace):
        assert list(loaded.nodes) == list(trace.nodes)
        assert set(loaded.edges) == set(trace.edges)
        got = _tensors(loaded)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(got[key].detach(), value.detach()), key
        for name, site in trace.nodes.items():
            if site["type"] == "param":
                # The link to the live store is not saved: it loads dead, never broken.
                link = getattr(loaded.nodes[name]["value"], "unconstrained", None)
                assert link is None or link() is None
    # And pickling changed nothing live: every param value still finds its leaf.
    for name, site in trace.nodes.items():
        if site["type"] == "param" and hasattr(site["value"], "unconstrained"):
            assert site["value"].unconstrained() is ember.get_param_store()._params.get(name, site["value"].unconstrained())
