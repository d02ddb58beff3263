from __future__ import annotations

import contextvars
import functools
import io
import itertools
import pickle
from typing import Any, Callable

import pyro.poutine.runtime
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime
from ember.poutine.enum_messenger import EnumMessenger
from ember.poutine.trace_struct import Trace
from tests.parity._backends import EMBER, PYRO, Backend, assert_same_error, assert_traces_match, run_both

PARALLEL: dict[str, Any] = {"enumerate": "parallel"}


# --- models (module level, so wrapped versions pickle) ----------------------------------------


def probe_model(b: Backend) -> None:
    """The enumeration probe of the reference, inside a plate of 5."""
    with b.pyro.plate("p", 5):
        a = b.pyro.sample("a", b.dist.Categorical(torch.ones(3)), infer=PARALLEL)
        c = b.pyro.sample("b", b.dist.Bernoulli(0.5), infer=PARALLEL)
        b.pyro.sample("c", b.dist.Normal(a.float() + c, 1.0), obs=torch.arange(5.0))


def mixed_model(b: Backend) -> None:
    """An enumerated, a sequential, an observed and a continuous site."""
    x = b.pyro.sample("x", b.dist.Bernoulli(0.3), infer=PARALLEL)
    b.pyro.sample("s", b.dist.Bernoulli(0.6), infer={"enumerate": "sequential"})
    b.pyro.sample("o", b.dist.Bernoulli(0.2), obs=torch.tensor(1.0), infer=PARALLEL)
    b.pyro.sample("n", b.dist.Normal(x, 1.0))


def coin(b: Backend, name: str = "x") -> Any:
    return b.pyro.sample(name, b.dist.Bernoulli(0.25), infer=PARALLEL)


def ember_coin() -> torch.Tensor:
    value: torch.Tensor = ember.sample("x", dist.Bernoulli(0.25), infer={"enumerate": "parallel"})
    return value


def _bind(b: Backend, model: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return functools.partial(model, b, *args)


def _enum_trace(b: Backend, model: Callable[..., Any], first_available_dim: int | None = -1, *args: Any) -> Any:
    return b.poutine.trace(b.poutine.enum(_bind(b, model, *args), first_available_dim)).get_trace()


# --- layout of enumerated values ---------------------------------------------------------------


def test_probe_values_dims_and_log_prob_shapes() -> None:
    ours, theirs = run_both(lambda b: _enum_trace(b, probe_model, -2))
    a, b_, c = (ours.nodes[n] for n in "abc")
    assert a["value"].shape == (3, 1) and a["value"].flatten().tolist() == [0, 1, 2]
    assert b_["value"].shape == (2, 1, 1) and b_["value"].flatten().tolist() == [0.0, 1.0]
    assert (a["infer"]["_enumerate_dim"], a["infer"]["_dim_to_id"]) == (-2, {-2: 0})
    assert (b_["infer"]["_enumerate_dim"], b_["infer"]["_dim_to_id"]) == (-3, {-3: 1, -2: 0})
    assert "_enumerate_dim" not in c["infer"] and c["infer"]["_dim_to_id"] == {-2: 0, -3: 1}
    assert a["done"] and b_["done"]
    assert_traces_match(ours, theirs)  # also runs compute_log_prob on both
    assert [tuple(ours.nodes[n]["log_prob"].shape) for n in "abc"] == [(3, 5), (2, 1, 5), (2, 3, 5)]


def test_log_prob_of_enumerated_site_has_its_enum_dim_and_plate_dim() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            with b.pyro.plate("p", 5):
                b.pyro.sample("a", b.dist.Categorical(torch.ones(3)), infer=PARALLEL)
                b.pyro.sample("b", b.dist.Bernoulli(0.5), infer=PARALLEL)
                b.pyro.sample("c", b.dist.Normal(0.0, 1.0), obs=torch.zeros(5))

        return b.poutine.trace(b.poutine.enum(model, first_available_dim=-2)).get_trace()

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)
    assert [tuple(ours.nodes[n]["log_prob"].shape) for n in "abc"] == [(3, 5), (2, 1, 5), (5,)]
    assert torch.allclose(ours.nodes["b"]["log_prob"], torch.tensor(0.5).log().expand(2, 1, 5))


def test_categorical_values_keep_their_support_mark() -> None:
    tr = poutine.trace(poutine.enum(_bind(EMBER, probe_model), first_available_dim=-2)).get_trace()
    site, fn = tr.nodes["a"], tr.nodes["a"]["fn"]
    assert isinstance(fn, dist.Categorical)
    assert getattr(site["value"], "_pyro_categorical_support") == id(fn)
    fast = fn.log_prob(site["value"])
    slow = fn.log_prob(site["value"].clone())  # a clone loses the mark: the general path
    assert torch.equal(fast, slow) and fast.shape == (3, 5)


def test_expand_enumerates_over_the_batch_shape() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            with b.pyro.plate("p", 4):
                b.pyro.sample("a", b.dist.Bernoulli(0.5), infer={"enumerate": "parallel", "expand": True})

        return b.poutine.trace(b.poutine.enum(model, first_available_dim=-3)).get_trace()

    ours, theirs = run_both(program)
    assert ours.nodes["a"]["value"].shape == (2, 1, 4)
    assert ours.nodes["a"]["value"][:, 0].tolist() == [[0.0] * 4, [1.0] * 4]
    assert ours.nodes["a"]["infer"]["_enumerate_dim"] == -3
    assert_traces_match(ours, theirs)


def test_only_unobserved_parallel_sites_are_enumerated() -> None:
    ours, theirs = run_both(lambda b: _enum_trace(b, mixed_model))
    assert ours.nodes["x"]["value"].shape == (2,)
    assert ours.nodes["s"]["value"].shape == () and "_enumerate_dim" not in ours.nodes["s"]["infer"]
    assert ours.nodes["o"]["value"] == 1.0 and "_enumerate_dim" not in ours.nodes["o"]["infer"]
    assert ours.nodes["n"]["value"].shape == (2,) and ours.nodes["n"]["infer"]["_dim_to_id"] == {-1: 0}
    assert ours.nodes["s"]["infer"]["_dim_to_id"] == {-1: 0}
    assert_traces_match(ours, theirs)


def test_enum_without_a_first_dim_continues_from_the_previous_run() -> None:
    def program(b: Backend) -> list[Any]:
        dims = []
        for first in (-2, None, None):
            tr = _enum_trace(b, coin, first)
            dims.append((tr.nodes["x"]["infer"]["_enumerate_dim"], dict(tr.nodes["x"]["infer"]["_dim_to_id"])))
        return dims

    ours, theirs = run_both(program)
    assert ours == theirs == [(-2, {-2: 0}), (-3, {-3: 1, -2: 0}), (-4, {-4: 2, -2: 0, -3: 1})]


def test_reentering_the_same_messenger_resets_its_per_run_state() -> None:
    wrapped = poutine.enum(ember_coin, first_available_dim=-1)
    for _ in range(2):
        tr = poutine.trace(wrapped).get_trace()
        assert tr.nodes["x"]["infer"]["_enumerate_dim"] == -1


# --- local Monte Carlo sampling (num_samples) ---------------------------------------------------


def tmc_model(b: Backend, strategy: str, expand: bool) -> None:
    infer = {"enumerate": "parallel", "num_samples": 4, "tmc": strategy, "expand": expand}
    a = b.pyro.sample("a", b.dist.Normal(0.0, 1.0), infer=infer)
    with b.pyro.plate("p", 3):
        c = b.pyro.sample("c", b.dist.Normal(a, 1.0), infer=infer)
        d = b.pyro.sample("d", b.dist.Normal(a + c, 1.0), infer=infer)
        b.pyro.sample("e", b.dist.Normal(d, 1.0), obs=torch.zeros(3))


@pytest.mark.parametrize("strategy", ["diagonal", "mixture"])
@pytest.mark.parametrize("expand", [False, True])
def test_tensor_monte_carlo_matches_pyro(strategy: str, expand: bool) -> None:
    ours, theirs = run_both(lambda b: _enum_trace(b, tmc_model, -2, strategy, expand), seed=3)
    shapes = [tuple(ours.nodes[n]["value"].shape) for n in "acd"]
    assert shapes == ([(4, 1), (4, 4, 3), (4, 4, 4, 3)] if expand else [(4, 1), (4, 1, 3), (4, 1, 1, 3)])
    assert_traces_match(ours, theirs)


def test_diagonal_strategy_pairs_particle_i_with_parent_particle_i() -> None:
    torch.manual_seed(1)
    tr = _enum_trace(EMBER, tmc_model, -2, "diagonal", False)
    a, c = tr.nodes["a"]["value"], tr.nodes["c"]["value"]
    # c ~ Normal(a, 1): with the diagonal choice, particle i of c is centred on particle i of a.
    torch.manual_seed(1)
    a_again = dist.Normal(0.0, 1.0)(torch.Size([4]))
    fat = dist.Normal(a_again.reshape(4, 1), 1.0).expand([4, 3])(torch.Size([4]))
    assert torch.equal(a.flatten(), a_again)
    assert torch.equal(c.squeeze(1), fat[torch.arange(4), torch.arange(4)])


def test_invalid_tmc_strategy_is_a_value_error() -> None:
    error, _ = assert_same_error(lambda b: _enum_trace(b, tmc_model, -2, "exact", False))
    assert str(error).startswith("exact not a valid TMC strategy")


def test_fewer_than_two_local_samples_is_a_value_error_naming_the_site() -> None:
    # Pyro fails here with an UnboundLocalError from inside enum; Ember says what is wrong.
    def model() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0), infer={"enumerate": "parallel", "num_samples": 1})

    with pytest.raises(ValueError, match="At site 'a', local parallel sampling needs num_samples >= 2, got 1"):
        poutine.trace(poutine.enum(model, first_available_dim=-1)).get_trace()


# --- errors ------------------------------------------------------------------------------------


def continuous_site(b: Backend) -> None:
    b.pyro.sample("x", b.dist.Normal(0.0, 1.0), infer=PARALLEL)


def vector_site(b: Backend) -> None:
    b.pyro.sample("x", b.dist.Bernoulli(0.5).expand([2]).to_event(1), infer=PARALLEL)


@pytest.mark.parametrize(
    "model, reason",
    [
        (continuous_site, "cannot enumerate Normal in parallel;"),
        (vector_site, "cannot enumerate Independent in parallel: Enumeration over cartesian product"),
    ],
)
def test_site_without_enumerable_support_raises_naming_the_site(model: Callable[[Backend], None], reason: str) -> None:
    error, _ = assert_same_error(lambda b: _enum_trace(b, model))
    assert isinstance(error, NotImplementedError)
    assert str(error).startswith(f"At site 'x', {reason}")


def test_unset_first_dim_raises_max_plate_nesting_error() -> None:
    message = "max_plate_nesting must be set to a finite value for parallel enumeration"
    # A fresh context has the allocator's initial state, as in a new process.
    with pytest.raises(ValueError, match=message) as ours:
        contextvars.Context().run(lambda: poutine.enum(ember_coin)())
    allocator = pyro.poutine.runtime._ENUM_ALLOCATOR
    saved = dict(vars(allocator))
    allocator.next_available_dim = -float("inf")  # type: ignore[assignment]  # Pyro annotates int, but -inf is its "unset" state
    try:
        with pytest.raises(ValueError, match=message) as theirs:
            pyro.poutine.enum(_bind(PYRO, coin))()
    finally:
        vars(allocator).clear()
        vars(allocator).update(saved)
    assert str(ours.value) == str(theirs.value)


def test_first_available_dim_must_be_negative() -> None:
    with pytest.raises(AssertionError):
        EnumMessenger(first_available_dim=0)


def test_non_callable_first_argument_is_rejected() -> None:
    with pytest.raises(ValueError, match="-1 is not callable, did you mean to pass it as a keyword arg?"):
        poutine.enum(-1)  # type: ignore[call-overload]  # deliberately wrong: the dim must be a keyword


# --- exact marginal likelihood ----------------------------------------------------------------


def marginal_model(b: Backend, probs: torch.Tensor, data: torch.Tensor) -> None:
    a = b.pyro.sample("a", b.dist.Categorical(probs), infer=PARALLEL)
    c = b.pyro.sample("b", b.dist.Bernoulli(torch.tensor([0.2, 0.5, 0.9])[a]), infer=PARALLEL)
    with b.pyro.plate("N", len(data)):
        d = b.pyro.sample("c", b.dist.Bernoulli(0.3 + 0.4 * c), infer=PARALLEL)
        b.pyro.sample("y", b.dist.Normal(a.float() + d, 1.0), obs=data)


def _aligned(packed: torch.Tensor, symbols: str) -> torch.Tensor:
    """View a packed tensor in a layout with one dim per symbol of ``symbols``."""
    own: str = getattr(packed, "_pyro_dims")
    order = sorted(range(len(own)), key=lambda i: symbols.index(own[i]))
    permuted = packed.permute(order)
    size = {own[i]: permuted.shape[k] for k, i in enumerate(order)}
    return permuted.reshape([size.get(s, 1) for s in symbols])


def _enumerated_log_marginal(tr: Trace) -> torch.Tensor:
    """Sum out every enumerated dim of a packed trace by hand: plate-local dims first."""
    tr.compute_log_prob()
    tr.pack_tensors()
    plate = tr.plate_to_symbol["N"]
    local_enum = tr.nodes["c"]["infer"]["_enumerate_symbol"]
    symbols = "".join(sorted(tr.symbol_to_dim))
    inside = sum(_aligned(tr.nodes[n]["packed"]["log_prob"], symbols) for n in ("c", "y"))
    outside = sum(_aligned(tr.nodes[n]["packed"]["log_prob"], symbols) for n in ("a", "b"))
    assert isinstance(inside, torch.Tensor) and isinstance(outside, torch.Tensor)
    per_datum = inside.logsumexp(symbols.index(local_enum), keepdim=True)
    joint = per_datum.sum(symbols.index(plate), keepdim=True) + outside
    return joint.logsumexp(tuple(range(joint.dim())))


def _brute_force_log_marginal(probs: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    terms = []
    for a, c, *d in itertools.product(range(3), range(2), *[range(2)] * len(data)):
        values = {"a": torch.tensor(a), "b": torch.tensor(float(c)), "c": torch.tensor(d, dtype=torch.float)}
        model = poutine.condition(_bind(EMBER, marginal_model, probs, data), data=values)
        log_joint = poutine.trace(model).get_trace().log_prob_sum()
        assert isinstance(log_joint, torch.Tensor)
        terms.append(log_joint)
    return torch.stack(terms).logsumexp(0)


def test_summing_packed_log_probs_over_enum_dims_gives_the_exact_marginal() -> None:
    logits = torch.tensor([0.1, -0.4, 0.7], requires_grad=True)
    data = torch.tensor([0.5, 1.5, -0.3])
    probs = logits.softmax(-1)
    tr = poutine.trace(poutine.enum(_bind(EMBER, marginal_model, probs, data), -2)).get_trace()
    assert [tr.nodes[n]["infer"]["_enumerate_dim"] for n in "abc"] == [-2, -3, -4]
    enumerated = _enumerated_log_marginal(tr)
    exact = _brute_force_log_marginal(probs, data)
    assert torch.allclose(enumerated, exact, atol=1e-5)
    (grad_enumerated,) = torch.autograd.grad(enumerated, logits, retain_graph=True)
    (grad_exact,) = torch.autograd.grad(exact, logits)
    assert torch.allclose(grad_enumerated, grad_exact, atol=1e-5)


def test_marginal_model_trace_matches_pyro() -> None:
    data = torch.tensor([0.5, 1.5, -0.3])
    probs = torch.tensor([0.2, 0.3, 0.5])
    assert_traces_match(*run_both(lambda b: _enum_trace(b, marginal_model, -2, probs, data)))


# --- handler forms and pickling -------------------------------------------------------------


def test_function_form_with_positional_and_keyword_dim() -> None:
    for wrapped in (poutine.enum(ember_coin, -1), poutine.enum(ember_coin, first_available_dim=-1)):
        assert torch.equal(wrapped(), torch.tensor([0.0, 1.0]))
    assert poutine.unwrap(poutine.enum(ember_coin, -1)) is ember_coin
    assert poutine.enum(ember_coin, -1).__name__ == "ember_coin"


def test_decorator_form() -> None:
    @poutine.enum(first_available_dim=-2)
    def decorated() -> torch.Tensor:
        return ember_coin()

    assert decorated().shape == (2, 1)


def test_context_manager_form() -> None:
    with poutine.trace() as tracer, poutine.enum(first_available_dim=-1) as messenger:
        ember_coin()
    assert isinstance(messenger, EnumMessenger)
    assert tracer.trace.nodes["x"]["value"].tolist() == [0.0, 1.0]


class Coins:
    def __init__(self, p: float) -> None:
        self.p = torch.tensor(p)

    @poutine.enum(first_available_dim=-1)
    def model(self) -> torch.Tensor:
        value: torch.Tensor = ember.sample("x", dist.Bernoulli(self.p), infer={"enumerate": "parallel"})
        return value


def test_method_decorator_form_binds_self() -> None:
    tr = poutine.trace(Coins(0.2).model).get_trace()
    assert tr.nodes["x"]["value"].tolist() == [0.0, 1.0]
    fn = tr.nodes["x"]["fn"]
    assert isinstance(fn, dist.Bernoulli) and torch.allclose(fn.probs, torch.tensor(0.2))


def test_wrapped_model_pickles() -> None:
    buffer = io.BytesIO()
    torch.save(poutine.enum(ember_coin, -1), buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    tr = poutine.trace(loaded).get_trace()
    assert tr.nodes["x"]["value"].tolist() == [0.0, 1.0] and tr.nodes["x"]["infer"]["_enumerate_dim"] == -1


# --- composition ------------------------------------------------------------------------------


def _replayed(b: Backend, enum_outside: bool) -> Any:
    source = b.poutine.trace(b.poutine.enum(_bind(b, mixed_model), first_available_dim=-1)).get_trace()
    if enum_outside:
        model = b.poutine.enum(b.poutine.replay(_bind(b, mixed_model), trace=source), first_available_dim=-1)
    else:
        model = b.poutine.replay(b.poutine.enum(_bind(b, mixed_model), first_available_dim=-1), trace=source)
    return source, b.poutine.trace(model).get_trace()


@pytest.mark.parametrize("enum_outside", [True, False])
def test_replay_composes_in_both_orders(enum_outside: bool) -> None:
    (source, ours), (_, theirs) = run_both(lambda b: _replayed(b, enum_outside))
    assert ours.nodes["x"]["value"] is source.nodes["x"]["value"]
    assert ours.nodes["x"]["infer"] is source.nodes["x"]["infer"]
    assert_traces_match(ours, theirs)


@pytest.mark.parametrize("enum_outside", [True, False])
def test_condition_composes_in_both_orders(enum_outside: bool) -> None:
    data = {"x": torch.tensor(1.0)}

    def program(b: Backend) -> Any:
        if enum_outside:
            model = b.poutine.enum(b.poutine.condition(_bind(b, mixed_model), data=data), first_available_dim=-1)
        else:
            model = b.poutine.condition(b.poutine.enum(_bind(b, mixed_model), first_available_dim=-1), data=data)
        return b.poutine.trace(model).get_trace()

    ours, theirs = run_both(program)
    assert ours.nodes["x"]["is_observed"] and ours.nodes["x"]["value"] == 1.0
    # Conditioning outside enum overrides a value enum already produced: Pyro keeps enum's dim.
    assert ("_enumerate_dim" in ours.nodes["x"]["infer"]) is (not enum_outside)
    assert_traces_match(ours, theirs)


@pytest.mark.parametrize("enum_outside", [True, False])
def test_block_composes_in_both_orders(enum_outside: bool) -> None:
    def program(b: Backend) -> Any:
        if enum_outside:
            model = b.poutine.enum(b.poutine.block(_bind(b, mixed_model), hide=["x"]), first_available_dim=-1)
        else:
            model = b.poutine.block(b.poutine.enum(_bind(b, mixed_model), first_available_dim=-1), hide=["x"])
        return b.poutine.trace(model).get_trace()

    ours, theirs = run_both(program)
    assert "x" not in ours.nodes
    # A site blocked inside enum never reaches it, so it is sampled, not enumerated.
    assert ours.nodes["n"]["fn"].loc.shape == (() if enum_outside else (2,))
    assert_traces_match(ours, theirs)


@pytest.mark.parametrize("enum_outside", [True, False])
def test_plate_composes_in_both_orders(enum_outside: bool) -> None:
    def program(b: Backend) -> Any:
        with b.poutine.trace() as tracer:
            if enum_outside:
                with b.poutine.enum(first_available_dim=-2), b.pyro.plate("p", 3):
                    coin(b)
            else:
                with b.pyro.plate("p", 3), b.poutine.enum(first_available_dim=-2):
                    coin(b)
        return tracer.trace

    ours, theirs = run_both(program)
    assert ours.nodes["x"]["value"].shape == (2, 1)
    # Inside the plate, enum finishes the site before the plate can broadcast its distribution.
    assert ours.nodes["x"]["fn"].batch_shape == ((3,) if enum_outside else ())
    assert_traces_match(ours, theirs)


def test_trace_inside_enum_sees_enumerated_values() -> None:
    with poutine.enum(first_available_dim=-1):
        tr = poutine.trace(ember_coin).get_trace()
    assert tr.nodes["x"]["value"].tolist() == [0.0, 1.0]
    assert runtime.get_stack() == ()
