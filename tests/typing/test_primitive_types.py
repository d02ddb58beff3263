"""``assert_type`` checks (mypy --strict) of the public types users see most: primitives,
plates, traces, losses, predictive samples and guides. They also run under pytest."""

from __future__ import annotations

from typing import Iterator

import torch
from typing_extensions import assert_type

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import SVI, Predictive, Trace_ELBO
from ember.infer.autoguide import AutoDelta
from ember.optim import Adam
from ember.poutine.messenger import Message as MessengerMessage
from ember.poutine.runtime import InferDict, Message
from ember.poutine.trace_struct import Trace


def model(n: int = 3) -> torch.Tensor:
    x = ember.sample("x", dist.Normal(0.0, 1.0))
    assert_type(x, torch.Tensor)
    with ember.plate("n", n) as idx:
        assert_type(idx, torch.Tensor)
        y = ember.sample("y", dist.Normal(x, 1.0))
    with ember.plate_stack("grid", (2, 2)) as nothing:
        assert_type(nothing, None)
    for t in ember.markov(range(2)):
        assert_type(t, int)
    data = ember.subsample(torch.arange(float(n)), event_dim=0)
    assert_type(data, torch.Tensor)
    torch_dist = ember.sample("t", dist.Normal(0.0, 1.0).to_event(0))
    assert_type(torch_dist, torch.Tensor)
    return y


def test_primitives_traces_and_inference_have_precise_types() -> None:
    ember.clear_param_store()
    tr = poutine.trace(model).get_trace()
    assert_type(tr, Trace)
    assert_type(tr.log_prob_sum(), torch.Tensor)
    fn = tr.nodes["x"]["fn"]
    assert_type(fn.batch_shape, torch.Size)
    assert_type(fn.event_shape, torch.Size)
    assert_type(fn.log_prob(tr.nodes["x"]["value"]), torch.Tensor)
    assert isinstance(poutine.trace(lambda: None).get_trace().log_prob_sum(), torch.Tensor)
    guide = AutoDelta(model)
    assert_type(guide(), dict[str, torch.Tensor])
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    assert_type(svi.step(), float)
    assert_type(svi.evaluate_loss(), float)
    assert_type(Trace_ELBO().loss(model, guide), float)
    samples = Predictive(model, guide=guide, num_samples=2)()
    assert_type(samples, dict[str, torch.Tensor])
    assert samples["y"].shape == (2, 3)


def test_message_types_import_from_pyros_paths() -> None:
    assert Message is MessengerMessage
    infer: InferDict = {"enumerate": "parallel"}
    assert infer["enumerate"] == "parallel"


def _markov_iterates() -> Iterator[int]:
    yield from ember.markov(range(3))


def test_markov_over_an_iterable_yields_its_items() -> None:
    assert list(_markov_iterates()) == [0, 1, 2]
