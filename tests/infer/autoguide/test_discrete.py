"""``AutoDiscreteParallel``: learned probabilities for discrete sites, marked for enumeration."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.infer.autoguide._models import DATA, assert_same_store, autoguide, store_state
from tests.parity._backends import Backend, assert_same_error, assert_traces_match, run_both


def discrete_model(backend: Backend) -> Any:
    pyro, d = backend.pyro, backend.dist

    def model(data: torch.Tensor) -> None:
        pyro.sample("coin", d.Bernoulli(0.3))
        with pyro.plate("N", len(data), subsample_size=3):
            pyro.sample("k", d.Categorical(torch.tensor([0.1, 0.2, 0.7])))
            pyro.sample("hot", d.OneHotCategorical(torch.ones(2) / 2))

    return model


def test_traces_and_params_match_pyro() -> None:
    def program(backend: Backend) -> Any:
        guide = autoguide(backend).AutoDiscreteParallel(discrete_model(backend))
        first = backend.poutine.trace(guide).get_trace(DATA)
        second = backend.poutine.trace(guide).get_trace(DATA)
        return first, second, store_state(backend)

    ours, theirs = run_both(program)
    assert_traces_match(ours[0], theirs[0])
    assert_traces_match(ours[1], theirs[1])
    assert_same_store(ours[2], theirs[2])
    assert list(ours[2]) == ["AutoDiscreteParallel.coin_probs", "AutoDiscreteParallel.k_probs", "AutoDiscreteParallel.hot_probs"]
    assert ours[0].nodes["k"]["infer"] == {"enumerate": "parallel"}
    assert ours[2]["AutoDiscreteParallel.k_probs"][0] == (3, 3)  # the subsample's rows, as in Pyro


@pytest.mark.parametrize("kind", ["continuous", "poisson"])
def test_unsupported_sites_raise_as_in_pyro(kind: str) -> None:
    def program(backend: Backend) -> None:
        def model() -> None:
            if kind == "continuous":
                backend.pyro.sample("x", backend.dist.Normal(0.0, 1.0))
            else:
                backend.pyro.sample("x", backend.dist.Poisson(3.0), infer={"enumerate": "parallel"})

        autoguide(backend).AutoDiscreteParallel(model)()

    ours, _ = assert_same_error(program)
    expected = (
        'Expected sample site "x" to be discrete and configured for parallel enumeration'
        if kind == "continuous"
        else "Poisson is not supported"
    )
    assert str(ours) == expected
