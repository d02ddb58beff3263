"""The Monte-Carlo ELBO written by hand, and its gradients, agree with pyro-ppl."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.parity._backends import Backend, assert_same_value, assert_traces_match, run_both

DATA = torch.randn(10, generator=torch.Generator().manual_seed(11))


def model(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> None:
    loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 1.0))
    with pyro.plate("N", len(data), subsample_size=4) as idx:
        pyro.sample("obs", dist.Normal(loc, scale), obs=data[idx])


def guide(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> None:
    m = pyro.param("m", torch.tensor(0.1))
    s = pyro.param("s", torch.tensor(0.8), constraint=dist.constraints.positive)
    pyro.sample("loc", dist.Normal(m, s))
    w = pyro.param("w", torch.tensor([0.3, 0.7]), constraint=dist.constraints.simplex)
    pyro.sample("scale", dist.LogNormal(w[0], w[1]))
    with pyro.plate("N", len(data), subsample_size=4):
        pass


def local_model(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> None:
    with pyro.plate("N", len(data), subsample_size=5):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(z, 0.5), obs=pyro.subsample(data, event_dim=0))


def local_guide(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> None:
    with pyro.plate("N", len(data), subsample_size=5):
        q_loc = pyro.param("q_loc", torch.zeros(len(data)), event_dim=0)
        q_scale = pyro.param("q_scale", torch.ones(len(data)), constraint=dist.constraints.positive, event_dim=0)
        pyro.sample("z", dist.Normal(q_loc, q_scale))


def elbo_program(model_fn: Any, guide_fn: Any) -> Any:
    def program(b: Backend) -> Any:
        def bound_model(data: torch.Tensor) -> None:
            model_fn(b.pyro, b.dist, b.poutine, data)

        def bound_guide(data: torch.Tensor) -> None:
            guide_fn(b.pyro, b.dist, b.poutine, data)

        guide_tr = b.poutine.trace(bound_guide).get_trace(DATA)
        model_tr = b.poutine.trace(b.poutine.replay(bound_model, trace=guide_tr)).get_trace(DATA)
        elbo = model_tr.log_prob_sum() - guide_tr.log_prob_sum()
        (-elbo).backward()
        grads = {name: leaf.grad for name, leaf in b.param_leaves().items()}
        return elbo.detach(), grads, guide_tr, model_tr

    return program


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("model_fn", "guide_fn"), [(model, guide), (local_model, local_guide)], ids=["global", "local_subsampled"]
)
def test_hand_written_elbo_and_gradients_match_pyro(model_fn: Any, guide_fn: Any, seed: int) -> None:
    (ours_elbo, ours_grads, ours_guide, ours_model), (theirs_elbo, theirs_grads, theirs_guide, theirs_model) = (
        run_both(elbo_program(model_fn, guide_fn), seed=seed)
    )
    assert_same_value(ours_elbo, theirs_elbo, "elbo")
    assert sorted(ours_grads) == sorted(theirs_grads)
    assert all(g is not None for g in theirs_grads.values())
    assert_same_value(ours_grads, theirs_grads, "grad")
    assert_traces_match(ours_guide, theirs_guide)
    assert_traces_match(ours_model, theirs_model)


def test_local_subsampled_param_gradient_is_zero_outside_batch_like_pyro() -> None:
    (_, ours_grads, ours_guide, _), (_, theirs_grads, _, _) = run_both(elbo_program(local_model, local_guide))
    idx = ours_guide.nodes["N"]["value"]
    outside = torch.ones(10, dtype=torch.bool)
    outside[idx] = False
    assert torch.all(ours_grads["q_loc"][outside] == 0)
    assert_same_value(ours_grads, theirs_grads, "grad")
