from __future__ import annotations

import functools
import io
import itertools
import pickle
from collections import Counter
from typing import Any, Callable, Iterable

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime
from ember.poutine.markov_messenger import MarkovMessenger
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both

PARALLEL: dict[str, Any] = {"enumerate": "parallel"}
TRANSITIONS = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])


# --- models (module level, so wrapped versions pickle) ----------------------------------------


def chain(b: Backend, steps: Iterable[int], length: int = 4) -> torch.Tensor:
    """A Markov chain of enumerated 3-state sites ``x0 .. x{length-1}``."""
    x = torch.tensor(0)
    for t in steps:
        x = b.pyro.sample(f"x{t}", b.dist.Categorical(TRANSITIONS[x]), infer=PARALLEL)
    return x


def markov_chain(b: Backend, history: int | None) -> Any:
    steps: Iterable[int] = range(4) if history is None else b.poutine.markov(range(4), history=history)
    return b.poutine.trace(b.poutine.enum(functools.partial(chain, b, steps), first_available_dim=-1)).get_trace()


def ember_chain_step(t: int, x: torch.Tensor) -> torch.Tensor:
    value: torch.Tensor = ember.sample(f"x{t}", dist.Categorical(TRANSITIONS[x]), infer={"enumerate": "parallel"})
    return value


def scoped_sites(b: Backend) -> None:
    """Sites in a plate and a sequential-style nest, for scope bookkeeping."""
    for t in b.poutine.markov(range(3)):
        with b.pyro.plate(f"plate_{t}", 2):
            b.pyro.sample(f"z{t}", b.dist.Normal(0.0, 1.0))
        b.pyro.sample(f"w{t}", b.dist.Normal(0.0, 1.0))


def _enum_dims(tr: Any, length: int = 4) -> list[int]:
    return [tr.nodes[f"x{t}"]["infer"]["_enumerate_dim"] for t in range(length)]


# --- dims recycled by enum --------------------------------------------------------------------


@pytest.mark.parametrize(
    "history, dims",
    [(None, [-1, -2, -3, -4]), (1, [-1, -2, -1, -2]), (2, [-1, -2, -3, -1]), (3, [-1, -2, -3, -4])],
)
def test_markov_recycles_enumeration_dims(history: int | None, dims: list[int]) -> None:
    ours, theirs = run_both(lambda b: markov_chain(b, history))
    assert _enum_dims(ours) == _enum_dims(theirs) == dims
    assert_traces_match(ours, theirs)


def test_without_markov_value_shapes_grow() -> None:
    tr = markov_chain(EMBER, None)
    assert [tuple(tr.nodes[f"x{t}"]["value"].shape) for t in range(3)] == [(3,), (3, 1), (3, 1, 1)]
    assert "_markov_scope" not in tr.nodes["x1"]["infer"]


def test_markov_scope_counts_the_sites_of_the_visible_contexts() -> None:
    tr = markov_chain(EMBER, 1)
    scopes = [tr.nodes[f"x{t}"]["infer"]["_markov_scope"] for t in range(4)]
    assert scopes == [Counter(), Counter({"x0": 1}), Counter({"x1": 1}), Counter({"x2": 1})]
    assert all(isinstance(scope, Counter) for scope in scopes)
    assert [tr.nodes[f"x{t}"]["infer"]["_markov_depth"] for t in range(4)] == [1, 1, 1, 1]
    assert tr.nodes["x3"]["value"].shape == (3, 1)
    assert tr.nodes["x3"]["infer"]["_dim_to_id"] == {-1: 2, -2: 3}


def test_nested_markov_instances_count_depth_and_history_zero_isolates_steps() -> None:
    def program(b: Backend) -> Any:
        with b.poutine.trace() as tracer:
            for t in b.poutine.markov(range(2), history=0):
                with b.poutine.markov():
                    b.pyro.sample(f"a{t}", b.dist.Normal(0.0, 1.0))
                b.pyro.sample(f"b{t}", b.dist.Normal(0.0, 1.0))
        return tracer.trace

    ours, theirs = run_both(program)
    assert ours.nodes["a1"]["infer"]["_markov_depth"] == 2
    assert ours.nodes["b1"]["infer"]["_markov_scope"] == Counter({"a1": 1})  # not a0/b0: history 0
    assert_traces_match(ours, theirs)


@pytest.mark.parametrize("keep, expected", [(False, Counter()), (True, Counter({"x": 1}))])
def test_keep_lets_a_later_sibling_context_see_earlier_sites(keep: bool, expected: Counter[str]) -> None:
    def program(b: Backend) -> Any:
        messenger = b.poutine.markov(keep=keep)
        with b.poutine.trace() as tracer:
            with messenger:
                b.pyro.sample("x", b.dist.Normal(0.0, 1.0))
            with messenger:
                b.pyro.sample("y", b.dist.Normal(0.0, 1.0))
        return tracer.trace

    ours, theirs = run_both(program)
    assert ours.nodes["y"]["infer"]["_markov_scope"] == expected
    assert_traces_match(ours, theirs)


def test_subsample_sites_are_skipped() -> None:
    ours, theirs = run_both(lambda b: b.poutine.trace(functools.partial(scoped_sites, b)).get_trace())
    assert "_markov_scope" not in ours.nodes["plate_1"]["infer"]
    assert ours.nodes["w1"]["infer"]["_markov_scope"] == Counter({"z0": 1, "w0": 1, "z1": 1})
    assert_traces_match(ours, theirs)


def test_done_sites_are_skipped() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.sample("u", b.dist.Normal(0.0, 1.0))
            b.pyro.sample("v", b.dist.Normal(0.0, 1.0))

        source = b.poutine.trace(model).get_trace()
        source.remove_node("v")
        # replay runs first (it is inside markov) and marks "u" done
        return b.poutine.trace(b.poutine.markov(b.poutine.replay(model, trace=source))).get_trace()

    ours, theirs = run_both(program)
    assert "_markov_scope" not in ours.nodes["u"]["infer"]
    assert ours.nodes["v"]["infer"] == {"_markov_scope": Counter(), "_markov_depth": 1}
    assert_traces_match(ours, theirs)


# --- exact marginal of an HMM through recycled dims ---------------------------------------------


def hmm(b: Backend, init: torch.Tensor, transition: torch.Tensor, locs: torch.Tensor, data: torch.Tensor) -> None:
    x = torch.tensor(0)
    for t in b.poutine.markov(range(len(data))):
        probs = init if t == 0 else transition[x]
        x = b.pyro.sample(f"x{t}", b.dist.Categorical(probs), infer=PARALLEL)
        b.pyro.sample(f"y{t}", b.dist.Normal(locs[x], 1.0), obs=data[t])


def _forward_log_marginal(tr: Any, length: int) -> torch.Tensor:
    """The forward algorithm on the trace's own log_prob tensors, dims as enum laid them out."""
    tr.compute_log_prob()
    alpha: torch.Tensor = torch.zeros(())
    previous_dim = None
    for t in range(length):
        factor = tr.nodes[f"x{t}"]["log_prob"] + tr.nodes[f"y{t}"]["log_prob"]
        alpha = alpha + factor
        if previous_dim is not None:
            alpha = alpha.logsumexp(previous_dim, keepdim=True)
        previous_dim = tr.nodes[f"x{t}"]["infer"]["_enumerate_dim"]
    return alpha.logsumexp(tuple(range(alpha.dim())))


def test_hmm_forward_pass_over_recycled_dims_gives_the_exact_marginal() -> None:
    logits = torch.tensor([[0.3, -0.2], [-0.5, 0.9]], requires_grad=True)
    init, transition = torch.tensor([0.4, 0.6]), logits.softmax(-1)
    locs, data = torch.tensor([-1.0, 1.5]), torch.tensor([0.3, 1.2, -0.7, 2.0, 0.1])
    model = functools.partial(hmm, EMBER, init, transition, locs, data)
    tr = poutine.trace(poutine.enum(model, first_available_dim=-1)).get_trace()
    assert _enum_dims(tr, len(data)) == [-1, -2, -1, -2, -1]
    enumerated = _forward_log_marginal(tr, len(data))

    terms = []
    for path in itertools.product(range(2), repeat=len(data)):
        values = {f"x{t}": torch.tensor(x) for t, x in enumerate(path)}
        log_joint = poutine.trace(poutine.condition(model, data=values)).get_trace().log_prob_sum()
        assert isinstance(log_joint, torch.Tensor)
        terms.append(log_joint)
    exact = torch.stack(terms).logsumexp(0)
    assert torch.allclose(enumerated, exact, atol=1e-5)
    (grad_enumerated,) = torch.autograd.grad(enumerated, logits, retain_graph=True)
    (grad_exact,) = torch.autograd.grad(exact, logits)
    assert torch.allclose(grad_enumerated, grad_exact, atol=1e-5)


def test_hmm_trace_matches_pyro() -> None:
    args = (torch.tensor([0.4, 0.6]), torch.tensor([[0.7, 0.3], [0.1, 0.9]]), torch.tensor([-1.0, 1.5]), torch.randn(4))

    def program(b: Backend) -> Any:
        return b.poutine.trace(b.poutine.enum(functools.partial(hmm, b, *args), first_available_dim=-1)).get_trace()

    assert_traces_match(*run_both(program))


# --- the iterator form ------------------------------------------------------------------------


def test_iterating_enters_one_instance_once_per_item_and_exits_at_the_end() -> None:
    seen = []
    steps = poutine.markov(range(3))
    assert iter(steps) is steps
    for t in steps:
        stack = runtime.get_stack()
        assert len(stack) == 1 and isinstance(stack[0], MarkovMessenger)
        seen.append((t, stack[0]._pos))
    assert seen == [(0, 0), (1, 1), (2, 2)]
    assert runtime.get_stack() == ()


def test_iterating_works_for_any_iterable() -> None:
    with poutine.trace() as tracer:
        for key in poutine.markov(["a", "b"]):
            ember.sample(key, dist.Normal(0.0, 1.0))
    assert tracer.trace.nodes["b"]["infer"]["_markov_scope"] == Counter({"a": 1})


def test_breaking_out_of_the_loop_exits_every_context() -> None:
    steps = poutine.markov(range(5))
    for t in steps:
        if t == 2:
            break
    steps.close()  # type: ignore[attr-defined]  # the iterator is a generator; closing it is what a dropped loop does
    assert runtime.get_stack() == ()


def test_an_error_in_the_loop_body_leaves_no_handler_installed() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        for t in poutine.markov(range(3)):
            if t == 1:
                raise RuntimeError("boom")
    assert runtime.get_stack() == ()


def test_a_non_iterable_non_callable_fails_on_iteration_as_in_pyro() -> None:
    steps = poutine.markov(3)  # type: ignore[call-overload]  # deliberately wrong, like Pyro it fails lazily
    with pytest.raises(TypeError, match="'int' object is not iterable"):
        next(steps)


def test_pyro_generator_api() -> None:
    messenger = MarkovMessenger(history=2)
    assert messenger.generator(range(2)) is messenger
    assert list(messenger) == [0, 1]
    assert runtime.get_stack() == ()


# --- errors -----------------------------------------------------------------------------------


def test_negative_history_is_rejected() -> None:
    with pytest.raises(AssertionError, match="markov history must be >= 0, got -1"):
        poutine.markov(history=-1)


@pytest.mark.parametrize("kwargs, argument", [({"dim": -1}, "dim"), ({"name": "t"}, "name")])
def test_vectorized_markov_is_not_implemented(kwargs: dict[str, Any], argument: str) -> None:
    import pyro.poutine

    with pytest.raises(NotImplementedError) as ours:
        poutine.markov(**kwargs)
    with pytest.raises(NotImplementedError) as theirs:
        pyro.poutine.markov(**kwargs)
    assert str(ours.value) == str(theirs.value) == (
        f"vectorized markov not yet implemented, try setting {argument} to None"
    )


# --- handler forms and pickling ---------------------------------------------------------------


def recursive_steps(t: int, x: torch.Tensor, record: list[int] | None = None) -> torch.Tensor:
    if record is not None:
        record.append(len(runtime.get_stack()))
    if t == 4:
        return x
    return recursive_step(t + 1, ember_chain_step(t, x), record)


recursive_step = poutine.markov(recursive_steps)


def test_function_form_wraps_a_recursive_function() -> None:
    record: list[int] = []
    tr = poutine.trace(poutine.enum(recursive_step, first_available_dim=-1)).get_trace(0, torch.tensor(0), record)
    assert _enum_dims(tr) == [-1, -2, -1, -2]
    assert record == [3, 3, 3, 3, 3]  # trace, enum and one markov, however deep the recursion
    assert poutine.unwrap(recursive_step) is recursive_steps and recursive_step.__name__ == "recursive_steps"


def test_recursive_function_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        def step(t: int, x: torch.Tensor) -> torch.Tensor:
            if t == 4:
                return x
            x = b.pyro.sample(f"x{t}", b.dist.Categorical(TRANSITIONS[x]), infer=PARALLEL)
            result: torch.Tensor = wrapped(t + 1, x)
            return result

        wrapped = b.poutine.markov(step, history=2)
        return b.poutine.trace(b.poutine.enum(wrapped, first_available_dim=-1)).get_trace(0, torch.tensor(0))

    ours, theirs = run_both(program)
    assert _enum_dims(ours) == [-1, -2, -3, -1]
    assert_traces_match(ours, theirs)


def test_decorator_forms() -> None:
    @poutine.markov
    def bare() -> torch.Tensor:
        return ember_chain_step(0, torch.tensor(0))

    @poutine.markov(history=2)
    def configured() -> torch.Tensor:
        return ember_chain_step(0, torch.tensor(0))

    for model in (bare, configured):
        tr = poutine.trace(model).get_trace()
        assert tr.nodes["x0"]["infer"]["_markov_depth"] == 1


def test_context_manager_form() -> None:
    with poutine.trace() as tracer, poutine.markov(history=1) as messenger:
        ember_chain_step(0, torch.tensor(0))
        with messenger:
            ember_chain_step(1, torch.tensor(0))
    assert isinstance(messenger, MarkovMessenger) and messenger._ref_count == 0
    assert tracer.trace.nodes["x1"]["infer"]["_markov_scope"] == Counter({"x0": 1})


class Walker:
    def __init__(self, length: int) -> None:
        self.length = length

    @poutine.markov
    def walk(self, t: int, x: torch.Tensor) -> torch.Tensor:
        if t == self.length:
            return x
        return self.walk(t + 1, ember_chain_step(t, x))


def test_method_decorator_form_binds_self() -> None:
    tr = poutine.trace(poutine.enum(Walker(3).walk, first_available_dim=-1)).get_trace(0, torch.tensor(0))
    assert _enum_dims(tr, 3) == [-1, -2, -1]


def test_wrapped_model_pickles() -> None:
    buffer = io.BytesIO()
    torch.save(poutine.markov(recursive_steps, history=2), buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    tr = poutine.trace(poutine.enum(loaded, first_available_dim=-1)).get_trace(0, torch.tensor(0))
    assert tr.nodes["x0"]["infer"]["_markov_depth"] == 1
    assert tr.nodes["x0"]["value"].shape == (3,)


# --- composition ------------------------------------------------------------------------------


def two_steps(b: Backend) -> None:
    for t in b.poutine.markov(range(2)):
        with b.pyro.plate(f"p{t}", 2):
            b.pyro.sample(f"x{t}", b.dist.Normal(0.0, 1.0))


Wrap = Callable[[Backend, Callable[[], None], Any], Callable[[], None]]


def _compose(b: Backend, make: Wrap, inside: bool) -> Any:
    """``make`` applied inside the markov loop (to each step's body) or around the whole model."""
    source = b.poutine.trace(functools.partial(two_steps, b)).get_trace()
    if not inside:
        return b.poutine.trace(make(b, functools.partial(two_steps, b), source)).get_trace()

    def model() -> None:
        for t in b.poutine.markov(range(2)):
            make(b, functools.partial(b.pyro.sample, f"x{t}", b.dist.Normal(0.0, 1.0)), source)()

    return b.poutine.trace(model).get_trace()


def _with_condition(b: Backend, fn: Callable[[], None], source: Any) -> Callable[[], None]:
    wrapped: Callable[[], None] = b.poutine.condition(fn, data={"x1": torch.zeros(2)})
    return wrapped


def _with_block(b: Backend, fn: Callable[[], None], source: Any) -> Callable[[], None]:
    wrapped: Callable[[], None] = b.poutine.block(fn, hide=["x0"])
    return wrapped


def _with_replay(b: Backend, fn: Callable[[], None], source: Any) -> Callable[[], None]:
    wrapped: Callable[[], None] = b.poutine.replay(fn, trace=source)
    return wrapped


def _with_trace(b: Backend, fn: Callable[[], None], source: Any) -> Callable[[], None]:
    wrapped: Callable[[], None] = b.poutine.trace(fn)
    return wrapped


@pytest.mark.parametrize("make", [_with_condition, _with_block, _with_replay, _with_trace])
@pytest.mark.parametrize("inside", [False, True])
def test_composes_with_handlers_in_both_orders(make: Wrap, inside: bool) -> None:
    ours, theirs = run_both(lambda b: _compose(b, make, inside))
    assert_traces_match(ours, theirs)
    if make is _with_block:
        assert "x0" not in ours.nodes
        scope = ours.nodes["x1"]["infer"]["_markov_scope"]
        # A site blocked inside markov is never recorded by it.
        assert scope == (Counter() if inside else Counter({"x0": 1}))


@pytest.mark.parametrize("plate_outside", [True, False])
def test_composes_with_plate_in_both_orders(plate_outside: bool) -> None:
    def program(b: Backend) -> Any:
        with b.poutine.trace() as tracer:
            if plate_outside:
                with b.pyro.plate("p", 2), b.poutine.markov():
                    b.pyro.sample("x", b.dist.Normal(0.0, 1.0))
            else:
                with b.poutine.markov(), b.pyro.plate("p", 2):
                    b.pyro.sample("x", b.dist.Normal(0.0, 1.0))
        return tracer.trace

    ours, theirs = run_both(program)
    assert ours.nodes["x"]["value"].shape == (2,) and ours.nodes["x"]["infer"]["_markov_depth"] == 1
    assert "_markov_scope" not in ours.nodes["p"]["infer"]
    assert_traces_match(ours, theirs)
