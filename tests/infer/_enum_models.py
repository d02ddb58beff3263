"""Small discrete-latent models for the enumeration tests, each written once for both libraries.

Every model is a function ``model(pyro, dist, data)`` of a backend's ``pyro`` and
``pyro.distributions`` namespaces, so the same program runs under Ember and pyro-ppl; its
params are created with ``pyro.param`` on first use, from fixed values. ``LATENTS`` lists,
per model, the discrete latent sites with their shapes and cardinalities, which is what the
brute-force harness (:mod:`tests.infer._brute_force`) enumerates.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

Model = Callable[[Any, Any, torch.Tensor], Any]
PAR = {"enumerate": "parallel"}

_GEN = torch.Generator().manual_seed(7)
GMM_DATA = torch.tensor([-1.2, 0.3, 2.1])
HMM_DATA = torch.tensor([0.1, 1.9, 2.2, -0.4])
NESTED_DATA = torch.randn(2, 2, generator=_GEN)


def _simplex(pyro: Any, dist: Any, name: str, value: torch.Tensor) -> torch.Tensor:
    param: torch.Tensor = pyro.param(name, value, constraint=dist.constraints.simplex)
    return param


def gmm(pyro: Any, dist: Any, data: torch.Tensor) -> Any:
    """A two-component mixture: per-point assignments enumerated in a plate."""
    weights = _simplex(pyro, dist, "weights", torch.tensor([0.3, 0.7]))
    locs = pyro.param("locs", torch.tensor([-1.0, 1.5]))
    scale = pyro.param("scale", torch.tensor(0.8), constraint=dist.constraints.positive)
    with pyro.plate("data", len(data)):
        z = pyro.sample("z", dist.Categorical(weights), infer=PAR)
        pyro.sample("x", dist.Normal(locs[z], scale), obs=data)
    return z


def hmm(pyro: Any, dist: Any, data: torch.Tensor) -> Any:
    """A three-state HMM over ``len(data)`` steps, its states in a ``markov`` loop."""
    init = _simplex(pyro, dist, "init", torch.tensor([0.5, 0.3, 0.2]))
    trans = _simplex(pyro, dist, "trans", torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]))
    locs = pyro.param("locs", torch.tensor([0.0, 2.0, -1.0]))
    states = []
    x = None
    for t in pyro.markov(range(len(data))):
        probs = init if x is None else trans[x]
        x = pyro.sample(f"x_{t}", dist.Categorical(probs), infer=PAR)
        states.append(x)
        pyro.sample(f"y_{t}", dist.Normal(locs[x], 1.0), obs=data[t])
    return states


def factorial_hmm(pyro: Any, dist: Any, data: torch.Tensor) -> Any:
    """Two independent binary chains that add up in each observation."""
    trans_w = _simplex(pyro, dist, "trans_w", torch.tensor([[0.8, 0.2], [0.3, 0.7]]))
    trans_x = _simplex(pyro, dist, "trans_x", torch.tensor([[0.6, 0.4], [0.1, 0.9]]))
    locs_w = pyro.param("locs_w", torch.tensor([0.0, 1.0]))
    locs_x = pyro.param("locs_x", torch.tensor([0.0, 2.0]))
    w = x = 0
    states = []
    for t in pyro.markov(range(len(data))):
        w = pyro.sample(f"w_{t}", dist.Categorical(trans_w[w]), infer=PAR)
        x = pyro.sample(f"x_{t}", dist.Categorical(trans_x[x]), infer=PAR)
        states += [w, x]
        pyro.sample(f"y_{t}", dist.Normal(locs_w[w] + locs_x[x], 0.7), obs=data[t])
    return states


def dbn(pyro: Any, dist: Any, data: torch.Tensor) -> Any:
    """A dynamic Bayesian network: ``x_t -> y_t``, ``y_{t-1} -> y_t``, both latent."""
    trans_x = _simplex(pyro, dist, "trans_x", torch.tensor([[0.7, 0.3], [0.2, 0.8]]))
    trans_y = _simplex(
        pyro, dist, "trans_y", torch.tensor([[[0.9, 0.1], [0.4, 0.6]], [[0.5, 0.5], [0.2, 0.8]]])
    )
    locs = pyro.param("locs", torch.tensor([[-1.0, 0.5], [1.0, 2.5]]))
    x = y = 0
    states = []
    for t in pyro.markov(range(len(data))):
        x = pyro.sample(f"x_{t}", dist.Categorical(trans_x[x]), infer=PAR)
        y = pyro.sample(f"y_{t}", dist.Categorical(trans_y[x, y]), infer=PAR)
        states += [x, y]
        pyro.sample(f"z_{t}", dist.Normal(locs[x, y], 1.0), obs=data[t])
    return states


def nested_plates(pyro: Any, dist: Any, data: torch.Tensor) -> Any:
    """Enumerated sites outside, inside and inside-inside two nested plates."""
    pa = _simplex(pyro, dist, "pa", torch.tensor([0.4, 0.6]))
    pb = _simplex(pyro, dist, "pb", torch.tensor([[0.7, 0.3], [0.2, 0.8]]))
    pc = _simplex(pyro, dist, "pc", torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    locs = pyro.param("locs", torch.tensor([[0.0, 1.0], [-1.0, 2.0]]))
    a = pyro.sample("a", dist.Categorical(pa), infer=PAR)
    with pyro.plate("i", data.shape[0], dim=-2):
        b = pyro.sample("b", dist.Categorical(pb[a]), infer=PAR)
        with pyro.plate("j", data.shape[1], dim=-1):
            c = pyro.sample("c", dist.Categorical(pc[b]), infer=PAR)
            pyro.sample("obs", dist.Normal(locs[a, c], 1.0), obs=data)
    return a, b, c


def history2(pyro: Any, dist: Any, data: torch.Tensor) -> Any:
    """A second-order chain: ``x_t`` depends on ``x_{t-1}`` and ``x_{t-2}`` (``markov(history=2)``)."""
    trans = _simplex(
        pyro, dist, "trans", torch.tensor([[[0.8, 0.2], [0.4, 0.6]], [[0.3, 0.7], [0.1, 0.9]]])
    )
    locs = pyro.param("locs", torch.tensor([-0.5, 1.5]))
    x_prev = x_prev2 = 0
    states = []
    for t in pyro.markov(range(len(data)), history=2):
        x = pyro.sample(f"x_{t}", dist.Categorical(trans[x_prev2, x_prev]), infer=PAR)
        states.append(x)
        pyro.sample(f"y_{t}", dist.Normal(locs[x], 1.0), obs=data[t])
        x_prev2, x_prev = x_prev, x
    return states


# name -> (model, data, max_plate_nesting, {latent site: (shape, cardinality)})
EXACT_MODELS: dict[str, tuple[Model, torch.Tensor, int, dict[str, tuple[tuple[int, ...], int]]]] = {
    "gmm": (gmm, GMM_DATA, 1, {"z": ((3,), 2)}),
    "hmm": (hmm, HMM_DATA, 0, {f"x_{t}": ((), 3) for t in range(4)}),
    "factorial_hmm": (
        factorial_hmm,
        HMM_DATA[:3],
        0,
        {f"{v}_{t}": ((), 2) for t in range(3) for v in "wx"},
    ),
    "dbn": (dbn, HMM_DATA[:3], 0, {f"{v}_{t}": ((), 2) for t in range(3) for v in "xy"}),
    "nested_plates": (nested_plates, NESTED_DATA, 2, {"a": ((), 2), "b": ((2, 1), 2), "c": ((2, 2), 2)}),
    "history2": (history2, HMM_DATA, 0, {f"x_{t}": ((), 2) for t in range(4)}),
}
