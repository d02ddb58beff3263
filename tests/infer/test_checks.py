"""The enumeration-era names of Pyro's ``pyro.util`` in ``ember.util``, against pyro-ppl's."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pyro.util
import pytest
import torch

import ember
import ember.distributions as dist
import ember.util
from ember import poutine
from ember.infer.util import LAST_CACHE_SIZE
from tests.parity._backends import Backend, assert_same_error, run_both


@pytest.mark.parametrize(
    "value", [1.0, math.nan, math.inf, -math.inf, torch.tensor([0.0, 1.0]), torch.tensor([math.nan]), torch.tensor([-math.inf, 0.0])]
)
def test_torch_isnan_and_isinf_match_pyro(value: Any) -> None:
    for ours, theirs in ((ember.util.torch_isnan, pyro.util.torch_isnan), (ember.util.torch_isinf, pyro.util.torch_isinf)):
        expected = theirs(value)
        actual = ours(value)
        assert type(actual) is type(expected)
        assert bool(actual) == bool(expected)


def test_jit_iter_and_ignore_jit_warnings_silence_the_tracer() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        with ember.util.ignore_jit_warnings():
            first = float(x[0])  # a TracerWarning without the filter
        rows = ember.util.jit_iter(x)
        return rows[0] * first + rows[1]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        traced = torch.jit.trace(fn, (torch.tensor([2.0, 3.0]),), check_trace=False)  # type: ignore[no-untyped-call]  # torch.jit.trace is unannotated
    assert float(traced(torch.tensor([2.0, 3.0]))) == 7.0
    # Outside tracing nothing is filtered.
    with pytest.warns(UserWarning, match="outside"), ember.util.ignore_jit_warnings():
        warnings.warn("outside")


def test_ignore_jit_warnings_with_message_filters() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        with ember.util.ignore_jit_warnings(["Converting a tensor to a Python", ("custom", UserWarning)]):
            warnings.warn("custom text")
            return x * float(x[0])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.jit.trace(fn, (torch.tensor([2.0]),), check_trace=False)  # type: ignore[no-untyped-call]  # torch.jit.trace is unannotated


def _trace(b: Backend, shape: tuple[int, ...], extra: bool) -> Any:
    def model() -> None:
        b.pyro.sample("x", b.dist.Normal(torch.zeros(shape), 1.0).to_event(len(shape)))
        if extra:
            b.pyro.sample("y", b.dist.Normal(0.0, 1.0))

    return b.poutine.trace(model).get_trace()


def test_check_traces_match_warns_about_changed_vars_like_pyro() -> None:
    def program(b: Backend) -> list[str]:
        util = ember.util if b.name == "ember" else pyro.util
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            util.check_traces_match(_trace(b, (2,), False), _trace(b, (2,), True))
        return [str(w.message) for w in caught]

    ours, theirs = run_both(program)
    assert len(ours) == 1 and ours[0].startswith("Model vars changed: {'x'} vs")
    assert sorted(ours[0].split(" vs ")[1]) == sorted(theirs[0].split(" vs ")[1])


def test_check_traces_match_raises_on_a_shape_change_like_pyro() -> None:
    def program(b: Backend) -> None:
        util = ember.util if b.name == "ember" else pyro.util
        util.check_traces_match(_trace(b, (2,), False), _trace(b, (3,), False))

    ours, _ = assert_same_error(program)
    assert str(ours) == "Site dims disagree at site 'x': torch.Size([2]) vs torch.Size([3])"


def test_last_cache_size_counts_the_dice_contraction() -> None:
    # A score-function guide site takes the DiCE path, which records its cached ops.
    def model() -> None:
        c = ember.sample("c", dist.Bernoulli(0.5))
        z = ember.sample("z", dist.Bernoulli(0.3), infer={"enumerate": "parallel"})
        ember.sample("x", dist.Normal(c + z, 1.0), obs=torch.tensor(0.5))

    def guide() -> None:
        ember.sample("c", dist.Bernoulli(ember.param("q", torch.tensor(0.4), constraint=dist.constraints.unit_interval)))

    LAST_CACHE_SIZE[0].clear()
    ember.infer.TraceEnum_ELBO(max_plate_nesting=0).loss(model, guide)
    assert sum(LAST_CACHE_SIZE[0].values()) > 0
    assert poutine.runtime.get_stack() == ()
