"""The compiled potential against the traced one, and the fallback for dynamic models."""

from __future__ import annotations

from typing import Any

import torch

import ember
import ember.distributions as dist
from ember.infer.mcmc import MCMC, NUTS
from ember.infer.mcmc.potential import FlatPotential
from ember.infer.mcmc.util import initialize_model


def hierarchical(y: torch.Tensor) -> None:
    loc = ember.sample("loc", dist.Normal(0.0, 2.0))
    scale = ember.sample("scale", dist.LogNormal(0.0, 1.0))
    probs = ember.sample("probs", dist.Dirichlet(torch.ones(3)))
    with ember.plate("groups", 4):
        effect = ember.sample("effect", dist.Normal(loc, scale))
        ember.sample("y", dist.Normal(effect + probs[0], 1.0), obs=y)


def dynamic(y: torch.Tensor) -> None:
    x = ember.sample("x", dist.Normal(0.0, 1.0))
    if x.item() > 0:  # data-dependent control flow: a recorded graph would bake in one branch
        ember.sample("y", dist.Normal(x, 1.0), obs=y)
    else:
        ember.sample("y", dist.Normal(2 * x, 1.0), obs=y)


Y = torch.tensor([0.3, -1.2, 2.0, 0.7])


def _flat(model: object, num_chains: int, compile_graph: bool, dense: bool = False) -> tuple[FlatPotential, torch.Tensor]:
    with ember.validation_enabled(False):
        params, potential_fn, _, _ = initialize_model(model, (Y,), num_chains=num_chains)  # type: ignore[arg-type]
        z = potential_fn.layout.pack(params, batch_ndim=1 if num_chains > 1 else 0).reshape(num_chains, -1)
        flat = FlatPotential(potential_fn, potential_fn.layout, num_chains, compile_graph=compile_graph, example=z, dense=dense)
    return flat, z


def test_compiled_value_gradient_and_leapfrog_equal_the_traced_path() -> None:
    compiled, z = _flat(hierarchical, 1, True)
    traced, _ = _flat(hierarchical, 1, False)
    assert compiled.compiled and not traced.compiled
    for point in (z, z + 0.3, z - 0.5):
        value, grad = compiled.value_and_grad(point)
        expected_value, expected_grad = traced.value_and_grad(point)
        assert torch.allclose(value, expected_value, atol=1e-5)
        assert torch.allclose(grad, expected_grad, atol=1e-5)
    r, step, inverse = torch.randn_like(z), torch.full((1, 1), 0.1), torch.rand_like(z) + 0.5
    grad = compiled.value_and_grad(z)[1]
    for got, want in zip(compiled.leapfrog(z, r, grad, step, inverse), traced.leapfrog(z, r, grad, step, inverse)):
        assert torch.allclose(got, want, atol=1e-5)


def test_vectorized_graph_equals_each_row_alone() -> None:
    batched, z = _flat(hierarchical, 3, True, dense=True)
    single, _ = _flat(hierarchical, 1, True, dense=True)
    assert batched.compiled
    r = torch.randn_like(z)
    inverse = torch.eye(z.shape[1]).expand(3, -1, -1) * torch.tensor([0.5, 1.0, 2.0])[:, None, None]
    step = torch.tensor([[0.05], [0.1], [0.2]])
    grad = batched.value_and_grad(z)[1]
    out = batched.leapfrog(z, r, grad, step, inverse)
    for c in range(3):
        row = single.leapfrog(z[c : c + 1], r[c : c + 1], grad[c : c + 1], step[c : c + 1], inverse[c : c + 1])
        for got, want in zip(out, row):
            assert torch.allclose(got[c : c + 1], want, atol=1e-5)


def test_potential_matches_pyro_at_the_same_point() -> None:
    import pyro
    import pyro.distributions
    import pyro.infer.mcmc.util

    pdist: Any = pyro.distributions  # pyro is untyped
    pyro_initialize_model: Any = pyro.infer.mcmc.util.initialize_model

    def pyro_model(y: torch.Tensor) -> None:
        loc = pyro.sample("loc", pdist.Normal(0.0, 2.0))
        scale = pyro.sample("scale", pdist.LogNormal(0.0, 1.0))
        probs = pyro.sample("probs", pdist.Dirichlet(torch.ones(3)))
        with pyro.plate("groups", 4):
            effect = pyro.sample("effect", pdist.Normal(loc, scale))
            pyro.sample("y", pdist.Normal(effect + probs[0], 1.0), obs=y)

    params, potential_fn, _, _ = initialize_model(hierarchical, (Y,))
    _, pyro_potential, _, _ = pyro_initialize_model(pyro_model, (Y,))
    for shift in (0.0, 0.4):
        point = {k: v + shift for k, v in params.items()}
        assert torch.allclose(potential_fn(point), pyro_potential(point), atol=1e-5)


def test_dynamic_model_falls_back_to_the_traced_path_and_samples() -> None:
    flat, z = _flat(dynamic, 1, True)
    assert not flat.compiled and flat.failure is not None
    value, grad = flat.value_and_grad(torch.tensor([[0.5]]))
    assert torch.allclose(value, -dist.Normal(0.0, 1.0).log_prob(torch.tensor(0.5)) - dist.Normal(0.5, 1.0).log_prob(Y).sum())
    kernel = NUTS(dynamic)
    mcmc = MCMC(kernel, num_samples=20, warmup_steps=10, disable_progbar=True)
    mcmc.run(Y)
    assert mcmc.get_samples()["x"].shape == (20,)


def test_compiled_and_traced_kernels_give_the_same_chain() -> None:
    samples = []
    for compiled in (True, False):
        ember.set_rng_seed(5)
        kernel = NUTS(hierarchical)
        kernel._use_compiled = compiled
        mcmc = MCMC(kernel, num_samples=6, warmup_steps=4, disable_progbar=True)
        mcmc.run(Y)
        samples.append(mcmc.get_samples())
    for name in samples[0]:
        assert torch.allclose(samples[0][name], samples[1][name], atol=1e-4), name


def test_validation_on_uses_the_traced_path() -> None:
    seen: list[bool] = []
    kernel = NUTS(hierarchical)
    mcmc = MCMC(kernel, num_samples=2, warmup_steps=1, disable_progbar=True, disable_validation=False,
                hook_fn=lambda k, p, s, i: seen.append(bool(getattr(k, "_flat").compiled)))
    mcmc.run(Y)
    assert seen and not any(seen)


def test_jit_compile_runs_the_graph_through_torch_compile_with_the_same_numbers() -> None:
    def small(y: torch.Tensor) -> None:
        loc = ember.sample("loc", dist.Normal(0.0, 2.0))
        with ember.plate("data", len(y)):
            ember.sample("y", dist.Normal(loc, 1.0), obs=y)

    with ember.validation_enabled(False):
        params, potential_fn, _, _ = initialize_model(small, (Y,))
        z = potential_fn.layout.pack(params)[None]
        compiled = FlatPotential(potential_fn, potential_fn.layout, 1, compile_graph=True, jit_compile=True, example=z)
        traced = FlatPotential(potential_fn, potential_fn.layout, 1)
    assert compiled.compiled, compiled.failure
    r, step, inverse = torch.ones_like(z), torch.full((1, 1), 0.2), torch.ones_like(z)
    for point in (z, z + 1.0):
        grad = traced.value_and_grad(point)[1]
        for got, want in zip(compiled.leapfrog(point, r, grad, step, inverse), traced.leapfrog(point, r, grad, step, inverse)):
            assert torch.allclose(got, want, atol=1e-5)


DATA = torch.tensor([-2.1, -1.8, 2.2, 1.9, 2.5, -2.4])


def mixture(data: torch.Tensor) -> None:
    locs = ember.sample("locs", dist.Normal(torch.tensor([-1.0, 1.0]), 2.0).to_event(1))
    with ember.plate("data", len(data)):
        z = ember.sample("z", dist.Categorical(torch.tensor([0.4, 0.6])))
        ember.sample("x", dist.Normal(locs[z], 1.0), obs=data)


def test_discrete_sites_are_enumerated_and_summed_out_of_the_potential() -> None:
    import pyro
    import pyro.distributions
    import pyro.infer.mcmc.util

    pdist: Any = pyro.distributions  # pyro is untyped
    pyro_initialize_model: Any = pyro.infer.mcmc.util.initialize_model

    def pyro_mixture(data: torch.Tensor) -> None:
        locs = pyro.sample("locs", pdist.Normal(torch.tensor([-1.0, 1.0]), 2.0).to_event(1))
        with pyro.plate("data", len(data)):
            z = pyro.sample("z", pdist.Categorical(torch.tensor([0.4, 0.6])))
            pyro.sample("x", pdist.Normal(locs[z], 1.0), obs=data)

    with ember.validation_enabled(False):
        params, potential_fn, _, _ = initialize_model(mixture, (DATA,))
    assert sorted(params) == ["locs"]
    locs = torch.tensor([-2.0, 2.0])
    weights = torch.log(torch.tensor([0.4, 0.6])) + dist.Normal(locs, 1.0).log_prob(DATA[:, None])
    expected = -(dist.Normal(torch.tensor([-1.0, 1.0]), 2.0).log_prob(locs).sum() + torch.logsumexp(weights, -1).sum())
    assert torch.allclose(potential_fn({"locs": locs}), expected)
    flat, z = _flat(lambda y: mixture(DATA), 1, True)
    assert flat.compiled, flat.failure
    assert torch.allclose(flat.value_and_grad(locs[None])[0], expected.reshape(1))
    _, pyro_potential, _, _ = pyro_initialize_model(pyro_mixture, (DATA,))
    assert torch.allclose(pyro_potential({"locs": locs}), expected)


def test_nuts_samples_a_model_with_an_enumerated_site() -> None:
    mcmc = MCMC(NUTS(mixture), num_samples=30, warmup_steps=30, disable_progbar=True)
    mcmc.run(DATA)
    samples = mcmc.get_samples()
    assert list(samples) == ["locs"] and samples["locs"].shape == (30, 2)
