"""Every handler in ``ember.poutine.handlers`` works in each of its forms and survives pickling.

For each handler there is one :class:`FormCase`: a module-level model (so the wrapped model
pickles), the handler's arguments, how to observe a run, and a check of the handler's
concrete effect on what was observed. The same check runs for the function form
``handler(model, **kwargs)``, the decorator form ``@handler(**kwargs)``, the
context-manager form ``with handler(**kwargs):`` (where the handler has one), the
method-decorator form (the decorated method sees ``self``), and the wrapped model after a
``torch.save`` / ``torch.load`` round trip, which must also give the same run as the original
under the same seed.
"""

from __future__ import annotations

import io
import pickle
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.reparam import TransformReparam
from ember.poutine import handlers, runtime
from ember.poutine.message import InferDict, Message
from ember.poutine.indep_messenger import IndepMessenger
from ember.poutine.trace_messenger import TraceMessenger
from ember.poutine.runtime import NonlocalExit
from ember.poutine.trace_struct import Trace

X = torch.tensor(0.3)

# ---------------------------------------------------------------------------------------------
# Module-level models and helpers (module level so that wrapped models pickle)


def two_sites(x: torch.Tensor) -> torch.Tensor:
    a = ember.sample("a", dist.Normal(x, 1.0))
    b: torch.Tensor = ember.sample("b", dist.Normal(a, 1.0))
    return b


def observed_site(x: torch.Tensor) -> torch.Tensor:
    a = ember.sample("a", dist.Normal(0.0, 1.0))
    b: torch.Tensor = ember.sample("b", dist.Normal(a, 1.0), obs=x)
    return b


def with_param(x: torch.Tensor) -> torch.Tensor:
    p = ember.param("p", torch.tensor(0.5), constraint=dist.constraints.positive)
    y: torch.Tensor = ember.sample("y", dist.Normal(p, 1.0), obs=x)
    return y


def independent(x: torch.Tensor) -> torch.Tensor:
    # IndepMessenger adds the frame but does not broadcast; ``broadcast`` does.
    with IndepMessenger("n", 3, dim=-1):
        z: torch.Tensor = ember.sample("z", dist.Normal(x, 1.0))
    return z


def beta_bernoulli(x: torch.Tensor) -> None:
    p = ember.sample("p", dist.Beta(2.0, 3.0))
    with ember.plate("data", 3):
        ember.sample("obs", dist.Bernoulli(p), obs=torch.tensor([1.0, 0.0, 1.0]))


def enumerated(x: torch.Tensor) -> torch.Tensor:
    c: torch.Tensor = ember.sample("c", dist.Bernoulli(torch.sigmoid(x)), infer={"enumerate": "parallel"})
    return c


def coin(x: torch.Tensor) -> torch.Tensor:
    c: torch.Tensor = ember.sample("c", dist.Bernoulli(torch.sigmoid(x)))
    ember.sample("y", dist.Normal(c, 1.0))
    return c


def log_normal(x: torch.Tensor) -> torch.Tensor:
    value: torch.Tensor = ember.sample("x", dist.LogNormal(x, 1.0))
    return value


# The ``trace`` handler's own record: the model notes the innermost TraceMessenger it ran under.
_TRACERS: list[TraceMessenger] = []


def spied(x: torch.Tensor) -> torch.Tensor:
    _TRACERS.append(next(f for f in reversed(runtime.get_stack()) if isinstance(f, TraceMessenger)))
    return two_sites(x)


def escape_at_b(msg: Message) -> bool:
    return msg["name"] == "b"


def sample_config(msg: Message) -> InferDict:
    return {"num_samples": 7} if msg["type"] == "sample" else {}


class StackQueue:
    """A last-in-first-out queue of traces that pickles (``queue.LifoQueue`` holds a lock)."""

    def __init__(self, *items: Trace) -> None:
        self.items = list(items)

    def empty(self) -> bool:
        return not self.items

    def get(self) -> Trace:
        return self.items.pop()

    def put(self, item: Trace, /) -> None:
        self.items.append(item)


def replay_source() -> Trace:
    source = Trace()
    source.add_node("a", type="sample", is_observed=False, value=torch.tensor(3.0), infer={})
    return source


# ---------------------------------------------------------------------------------------------
# Observations and checks


def outer_trace(fn: Callable[[torch.Tensor], Any]) -> Trace:
    """Run ``fn(X)`` under a ``trace`` context and return the record."""
    with poutine.trace() as tracer:
        fn(X)
    return tracer.get_trace()


def escaped(fn: Callable[[torch.Tensor], Any]) -> tuple[str | None, list[str]]:
    """Run ``fn(X)`` under ``trace``; the escaped site's name and the sites the trace kept."""
    with poutine.trace() as tracer, pytest.raises(NonlocalExit) as info:
        fn(X)
    return info.value.site["name"], list(tracer.trace.nodes)


def own_trace(fn: Callable[[torch.Tensor], Any]) -> Trace:
    """Run ``fn(X)`` and return what the ``trace`` handler it is wrapped in recorded."""
    _TRACERS.clear()
    fn(X)
    (tracer,) = _TRACERS
    return tracer.get_trace()


def _value(tr: Trace, name: str) -> torch.Tensor:
    value: torch.Tensor = tr.nodes[name]["value"]
    return value


def check_block(tr: Trace) -> None:
    assert "a" not in tr.nodes and "b" in tr.nodes


def check_broadcast(tr: Trace) -> None:
    assert _value(tr, "z").shape == (3,)
    assert [f.name for f in tr.nodes["z"]["cond_indep_stack"]] == ["n"]


def check_collapse(tr: Trace) -> None:
    site = tr.nodes["p"]
    assert site["is_observed"] and type(site["fn"]).__name__ == "Unit"
    assert "obs" not in tr.nodes  # folded into the collapsed factor


def check_condition(tr: Trace) -> None:
    assert tr.nodes["a"]["is_observed"] and _value(tr, "a").item() == 0.5
    assert not tr.nodes["b"]["is_observed"]
    fn: Any = tr.nodes["b"]["fn"]
    assert fn.loc.item() == 0.5


def check_do(tr: Trace) -> None:
    assert list(tr.nodes)[:2] == ["a", "b"] and "a__CF" not in tr.nodes
    assert not tr.nodes["a"]["is_observed"]
    fn: Any = tr.nodes["b"]["fn"]
    assert fn.loc.item() == 2.0  # b depends on the intervention, not on the fresh a


def check_enum(tr: Trace) -> None:
    assert torch.equal(_value(tr, "c"), torch.tensor([0.0, 1.0]))
    assert tr.nodes["c"]["infer"]["_enumerate_dim"] == -1


def check_equalize(tr: Trace) -> None:
    assert torch.equal(_value(tr, "b"), _value(tr, "a"))
    assert tr.nodes["b"]["is_observed"] and not tr.nodes["a"]["is_observed"]


def check_escape(result: tuple[str | None, list[str]]) -> None:
    assert result == ("b", ["a"])


def check_infer_config(tr: Trace) -> None:
    assert tr.nodes["a"]["infer"] == {"num_samples": 7} and tr.nodes["b"]["infer"] == {"num_samples": 7}


def check_lift(tr: Trace) -> None:
    site = tr.nodes["p"]
    assert site["type"] == "sample" and not site["is_observed"]
    assert type(site["fn"]).__name__ == "Normal"


def check_markov(tr: Trace) -> None:
    # One markov context: b's scope holds a, the earlier site of the same context (as in Pyro).
    assert tr.nodes["a"]["infer"] == {"_markov_scope": Counter(), "_markov_depth": 1}
    assert tr.nodes["b"]["infer"] == {"_markov_scope": Counter({"a": 1}), "_markov_depth": 1}


def check_mask(tr: Trace) -> None:
    assert tr.nodes["a"]["mask"] is False and tr.nodes["b"]["mask"] is False
    assert tr.log_prob_sum() == 0.0


def check_queue(tr: Trace) -> None:
    # The abandoned first run is forgotten; the completed one took c = 1 (last in, first out).
    assert [n for n in tr.nodes] == ["c", "y"]
    assert _value(tr, "c").item() == 1.0


def check_reparam(tr: Trace) -> None:
    assert [n for n in tr.nodes] == ["x_base", "x"]
    assert torch.allclose(_value(tr, "x"), _value(tr, "x_base").exp())


def check_replay(tr: Trace) -> None:
    assert _value(tr, "a").item() == 3.0
    fn: Any = tr.nodes["b"]["fn"]
    assert fn.loc.item() == 3.0


def check_scale(tr: Trace) -> None:
    assert tr.nodes["a"]["scale"] == 2.5 and tr.nodes["b"]["scale"] == 2.5


def check_seed(tr: Trace) -> None:
    ember.set_rng_seed(123)
    expected = dist.Normal(X, 1.0).sample()
    assert torch.equal(_value(tr, "a"), expected)


def check_substitute(tr: Trace) -> None:
    assert _value(tr, "p").item() == 0.25


def check_trace(tr: Trace) -> None:
    assert [n for n in tr.nodes if not n.startswith("_")] == ["a", "b"]
    assert tr.nodes["a"]["type"] == "sample"


def check_uncondition(tr: Trace) -> None:
    site = tr.nodes["b"]
    assert not site["is_observed"] and site["infer"]["was_observed"] is True
    obs = site["infer"]["obs"]
    assert obs is not None and torch.equal(obs, X)


# ---------------------------------------------------------------------------------------------
# The matrix


@dataclass(frozen=True)
class FormCase:
    name: str
    model: Callable[[torch.Tensor], Any]
    kwargs: Callable[[], dict[str, Any]]
    check: Callable[[Any], None]
    observe: Callable[[Callable[[torch.Tensor], Any]], Any] = outer_trace
    no_context_form: str = ""

    @property
    def handler(self) -> Any:
        return getattr(handlers, self.name)


CASES = [
    FormCase("block", two_sites, lambda: {"hide": ["a"]}, check_block),
    FormCase("broadcast", independent, dict, check_broadcast),
    FormCase("collapse", beta_bernoulli, dict, check_collapse),
    FormCase("condition", two_sites, lambda: {"data": {"a": torch.tensor(0.5)}}, check_condition),
    FormCase("do", two_sites, lambda: {"data": {"a": torch.tensor(2.0)}}, check_do),
    FormCase("enum", enumerated, lambda: {"first_available_dim": -1}, check_enum),
    FormCase("equalize", two_sites, lambda: {"sites": "[ab]"}, check_equalize),
    FormCase("escape", two_sites, lambda: {"escape_fn": escape_at_b}, check_escape, observe=escaped),
    FormCase("infer_config", two_sites, lambda: {"config_fn": sample_config}, check_infer_config),
    FormCase("lift", with_param, lambda: {"prior": {"p": dist.Normal(0.0, 1.0)}}, check_lift),
    FormCase("markov", two_sites, lambda: {"history": 1}, check_markov),
    FormCase("mask", two_sites, lambda: {"mask": False}, check_mask),
    FormCase(
        "queue",
        coin,
        lambda: {"queue": StackQueue(Trace())},
        check_queue,
        no_context_form="queue re-runs the function, so it is no messenger and has no with-form",
    ),
    FormCase("reparam", log_normal, lambda: {"config": {"x": TransformReparam()}}, check_reparam),
    FormCase("replay", two_sites, lambda: {"trace": replay_source()}, check_replay),
    FormCase("scale", two_sites, lambda: {"scale": 2.5}, check_scale),
    FormCase("seed", two_sites, lambda: {"rng_seed": 123}, check_seed),
    FormCase("substitute", with_param, lambda: {"data": {"p": torch.tensor(0.25)}}, check_substitute),
    FormCase("trace", spied, dict, check_trace, observe=own_trace),
    FormCase("uncondition", observed_site, dict, check_uncondition),
]
_IDS = [case.name for case in CASES]


def test_the_matrix_covers_every_handler() -> None:
    assert sorted(_IDS) == sorted(name for name in handlers.__all__ if name not in ("Handler", "NonlocalExit"))


def _run(case: FormCase, fn: Callable[[torch.Tensor], Any]) -> Any:
    ember.set_rng_seed(7)
    return case.observe(fn)


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_function_form(case: FormCase) -> None:
    case.check(_run(case, case.handler(case.model, **case.kwargs())))


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_decorator_form(case: FormCase) -> None:
    decorator: Callable[[Callable[[torch.Tensor], Any]], Callable[[torch.Tensor], Any]] = case.handler(**case.kwargs())

    @decorator
    def decorated(x: torch.Tensor) -> Any:
        return case.model(x)

    case.check(_run(case, decorated))
    # The decorator is also a plain call on an existing function.
    case.check(_run(case, case.handler(**case.kwargs())(case.model)))


_CONTEXT_CASES = [
    pytest.param(
        case,
        id=case.name + (f"-skipped: {case.no_context_form}" if case.no_context_form else ""),
        marks=[pytest.mark.skip(reason=case.no_context_form)] if case.no_context_form else [],
    )
    for case in CASES
]


@pytest.mark.parametrize("case", _CONTEXT_CASES)
def test_context_manager_form(case: FormCase) -> None:
    def in_context(x: torch.Tensor) -> Any:
        with case.handler(**case.kwargs()):
            return case.model(x)

    case.check(_run(case, in_context))


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_method_decorator_form_binds_self(case: FormCase) -> None:
    decorator: Callable[[Callable[[Any], Any]], Callable[[Any], Any]] = case.handler(**case.kwargs())

    class Holder:
        def __init__(self, x: torch.Tensor) -> None:
            self.x = x

        @decorator
        def method(self) -> Any:
            assert isinstance(self, Holder)
            return case.model(self.x)

    case.check(_run(case, lambda x: Holder(x).method()))


def _summary(observed: Any) -> Any:
    if isinstance(observed, Trace):
        return [(name, site["type"], site.get("is_observed"), site.get("value")) for name, site in observed.nodes.items()]
    return observed


def _assert_same(first: Any, second: Any) -> None:
    if isinstance(first, torch.Tensor):
        assert isinstance(second, torch.Tensor) and torch.equal(first, second)
    elif isinstance(first, (list, tuple)):
        assert len(first) == len(second)
        for a, b in zip(first, second):
            _assert_same(a, b)
    else:
        assert first == second


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_wrapped_model_survives_torch_save_and_load(case: FormCase) -> None:
    wrapped = case.handler(case.model, **case.kwargs())
    buffer = io.BytesIO()
    torch.save(wrapped, buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert loaded is not wrapped and type(loaded) is type(wrapped)
    restored = _run(case, loaded)
    case.check(restored)
    _assert_same(_summary(restored), _summary(_run(case, case.handler(case.model, **case.kwargs()))))
