"""Bad input to the enumerating ELBOs and infer_discrete: Pyro's error types and texts, and no
state left behind (handler stack, plate dims, param store), checked side by side with pyro-ppl."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pytest
import torch

import ember
from tests.parity._backends import Backend, EmberState, assert_same_error, run_both

PAR = {"enumerate": "parallel"}
DATA = torch.tensor([0.3, -0.5, 1.2])


def _loss(b: Backend, model: Any, guide: Any, elbo: str = "TraceEnum_ELBO", **options: Any) -> float:
    loss: float = getattr(b.infer, elbo)(**options).loss(functools.partial(model, b), functools.partial(guide, b), DATA)
    return loss


def _empty(b: Backend, data: torch.Tensor) -> None:
    pass


def nested_model(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    p = pyro.param("p", torch.tensor(0.4), constraint=dist.constraints.unit_interval)
    with pyro.plate("outer", 2, dim=-2):
        with pyro.plate("inner", len(data), dim=-1):
            z = pyro.sample("z", dist.Bernoulli(p), infer=PAR)
            pyro.sample("x", dist.Normal(z, 1.0), obs=data)


def test_too_small_max_plate_nesting() -> None:
    ours, _ = assert_same_error(lambda b: _loss(b, nested_model, _empty, max_plate_nesting=1))
    assert isinstance(ours, ValueError)
    assert 'at site "z"' in str(ours) and "max_plate_nesting" in str(ours)


def continuous_enumerated(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    loc = pyro.sample("loc", dist.Normal(0.0, 1.0), infer=PAR)
    with pyro.plate("data", len(data)):
        pyro.sample("x", dist.Normal(loc, 1.0), obs=data)


def test_enumerated_continuous_site() -> None:
    ours, _ = assert_same_error(lambda b: _loss(b, continuous_enumerated, _empty, max_plate_nesting=1))
    assert isinstance(ours, NotImplementedError)
    assert "'loc'" in str(ours) and "Normal" in str(ours)


def global_enum_model(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    a = pyro.sample("a", dist.Bernoulli(0.3), infer=PAR)
    with pyro.plate("data", len(data)):
        z = pyro.sample("z", dist.Bernoulli(0.2 + 0.5 * a), infer=PAR)
        pyro.sample("x", dist.Normal(z, 1.0), obs=data)


def local_enum_guide(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    q = pyro.param("q", torch.full((len(data),), 0.5), constraint=dist.constraints.unit_interval)
    with pyro.plate("data", len(data)):
        pyro.sample("z", dist.Bernoulli(q), infer=PAR)


def test_site_enumerated_in_the_guide_below_a_model_enumeration() -> None:
    # "z" is enumerated in the guide inside a plate, and the model enumerates "a" above it.
    ours, _ = assert_same_error(lambda b: _loss(b, global_enum_model, local_enum_guide, max_plate_nesting=1))
    assert isinstance(ours, ValueError)
    assert "guide site 'z'" in str(ours) and "plate('data')" in str(ours)


def test_infer_discrete_first_available_dim_colliding_with_a_plate() -> None:
    def program(b: Backend) -> Any:
        model = functools.partial(nested_model, b)
        return b.infer.infer_discrete(model, first_available_dim=-1, temperature=0)(DATA)

    ours, _ = assert_same_error(program)
    assert isinstance(ours, ValueError)
    assert "plate('inner') at site x" in str(ours) and "3 vs 2" in str(ours)


@pytest.mark.parametrize("bad", [0, 2])
def test_infer_discrete_nonnegative_first_available_dim(bad: int) -> None:
    before = EmberState.capture()
    with pytest.raises(AssertionError, match=f"first_available_dim must be negative.*got {bad}"):
        ember.infer.infer_discrete(lambda: None, first_available_dim=bad)
    assert EmberState.capture() == before


def test_infer_discrete_missing_first_available_dim() -> None:
    with pytest.raises(TypeError, match="first_available_dim must be a negative int, got None"):
        ember.infer.infer_discrete(lambda: None)


def test_infer_discrete_bad_temperature() -> None:
    def program(b: Backend) -> Any:
        return b.infer.infer_discrete(functools.partial(nested_model, b), first_available_dim=-3, temperature=2)(DATA)

    ours, _ = assert_same_error(program)
    assert isinstance(ours, ValueError) and "got 2" in str(ours)


def sequential_model(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    z = pyro.sample("z", dist.Bernoulli(0.5), infer={"enumerate": "sequential"})
    pyro.sample("x", dist.Normal(z, 1.0), obs=data[0])


def test_model_side_sequential_enumeration() -> None:
    ours, _ = assert_same_error(lambda b: _loss(b, sequential_model, _empty, max_plate_nesting=0))
    assert isinstance(ours, NotImplementedError) and "'z'" in str(ours)


def scaled_model(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    with b.poutine.scale(scale=2.0):
        a = pyro.sample("a", dist.Bernoulli(0.3), infer=PAR)
    pyro.sample("x", dist.Normal(a, 1.0), obs=data[0])


def test_enumerated_sites_with_different_scales() -> None:
    ours, _ = assert_same_error(lambda b: _loss(b, scaled_model, _empty, max_plate_nesting=0))
    assert isinstance(ours, ValueError) and "2 different scales" in str(ours)


def test_compute_marginals_with_guide_enumeration() -> None:
    def program(b: Backend) -> Any:
        elbo = b.infer.TraceEnum_ELBO(max_plate_nesting=1)
        return elbo.compute_marginals(
            functools.partial(global_enum_model, b), functools.partial(local_enum_guide, b), DATA
        )

    ours, _ = assert_same_error(program)
    assert isinstance(ours, NotImplementedError) and "not compatible with guide enumeration" in str(ours)


def cross_plates_model(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    plate_i, plate_j = pyro.plate("i", 2, dim=-1), pyro.plate("j", 3, dim=-2)
    with plate_i:
        a = pyro.sample("a", dist.Bernoulli(0.3), infer=PAR)
    with plate_j:
        b_ = pyro.sample("b", dist.Bernoulli(0.4), infer=PAR)
    with plate_i, plate_j:
        pyro.sample("x", dist.Normal(a + b_, 1.0), obs=torch.zeros(3, 2))


def test_enumerated_dependence_across_independent_plates() -> None:
    # Pyro lists the plates in frozenset order, which varies between runs; Ember sorts them.
    from tests.parity._backends import EMBER, PYRO

    with pytest.raises(NotImplementedError, match="Expected tree-structured plate nesting"):
        _loss(PYRO, cross_plates_model, _empty, max_plate_nesting=2)
    before = EmberState.capture()
    with pytest.raises(NotImplementedError, match=r"Expected tree-structured plate nesting, but found dependencies on independent plates \[a, c\]"):
        _loss(EMBER, cross_plates_model, _empty, max_plate_nesting=2)
    assert EmberState.capture() == before


def late_global_model(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    with pyro.plate("data", len(data)):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        pyro.sample("x", dist.Normal(z, 1.0), obs=data)
    pyro.sample("late", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))


def late_global_guide(b: Backend, data: torch.Tensor) -> None:
    pyro, dist = b.pyro, b.dist
    with pyro.plate("data", len(data)):
        pyro.sample("z", dist.Bernoulli(0.5), infer=PAR)


def test_site_outside_a_plate_after_an_enumerated_site_inside_it_warns() -> None:
    def program(b: Backend) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _loss(b, late_global_model, late_global_guide, max_plate_nesting=1)
        return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]

    ours, theirs = run_both(program)
    assert ours == theirs and len(ours) == 1
    assert 'at model site "late", possibly invalid dependency.' in ours[0]


def test_guide_messenger_is_refused() -> None:
    from ember.poutine.guide import GuideMessenger

    class Guide(GuideMessenger):
        def get_posterior(self, name: str, prior: Any) -> Any:
            return prior

    before = EmberState.capture()
    with pytest.raises(NotImplementedError, match="TraceEnum_ELBO does not support GuideMessenger"):
        ember.infer.TraceEnum_ELBO().loss(lambda: None, Guide(lambda: None))
    assert EmberState.capture() == before
