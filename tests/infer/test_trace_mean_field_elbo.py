"""TraceMeanField_ELBO: exact KL terms, the Monte Carlo fallback, and the mean-field checks."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import JitTraceMeanField_ELBO, TraceMeanField_ELBO
from tests.parity._backends import Backend, run_both


def prior_model() -> None:
    ember.sample("z", dist.Normal(0.0, 1.0))


def normal_guide() -> None:
    loc = ember.param("loc", torch.tensor(0.6))
    scale = ember.param("scale", torch.tensor(0.5), constraint=dist.constraints.positive)
    ember.sample("z", dist.Normal(loc, scale))


def test_kl_term_is_exact_whatever_the_draw() -> None:
    expected = 0.5 * (0.6**2 + 0.5**2 - 1.0) - math.log(0.5)
    elbo = TraceMeanField_ELBO(num_particles=2)
    assert {round(elbo.loss(prior_model, normal_guide), 6) for _ in range(3)} == {round(expected, 6)}
    assert elbo.loss_and_grads(prior_model, normal_guide) == pytest.approx(expected, rel=1e-6)
    leaves = dict(ember.get_param_store().named_parameters())
    # d KL / d loc = loc and d KL / d log(scale) = scale^2 - 1, times two particles averaged.
    assert leaves["loc"].grad is not None and leaves["loc"].grad.item() == pytest.approx(0.6, rel=1e-5)
    assert leaves["scale"].grad is not None and leaves["scale"].grad.item() == pytest.approx(0.25 - 1.0, rel=1e-5)


def test_observed_sites_are_estimated_from_the_draw() -> None:
    def model() -> None:
        z = ember.sample("z", dist.Normal(0.0, 1.0))
        ember.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(2.0))

    ember.set_rng_seed(4)
    z = poutine.trace(normal_guide).get_trace().nodes["z"]["value"].detach()
    ember.set_rng_seed(4)
    loss = TraceMeanField_ELBO().loss(model, normal_guide)
    kl = 0.5 * (0.6**2 + 0.5**2 - 1.0) - math.log(0.5)
    assert loss == pytest.approx(kl - dist.Normal(z, 1.0).log_prob(torch.tensor(2.0)).item(), rel=1e-5)


def test_pairs_without_a_registered_kl_fall_back_to_the_sample() -> None:
    def model() -> None:
        ember.sample("z", dist.StudentT(3.0))

    ember.set_rng_seed(1)
    z = poutine.trace(normal_guide).get_trace().nodes["z"]["value"].detach()
    ember.set_rng_seed(1)
    loss = TraceMeanField_ELBO().loss(model, normal_guide)
    expected = dist.Normal(0.6, 0.5).log_prob(z) - dist.StudentT(3.0).log_prob(z)
    assert loss == pytest.approx(expected.item(), rel=1e-5)


def test_kl_is_scaled_by_subsampling_and_masked() -> None:
    locs = torch.tensor([0.0, 1.0, 2.0, 3.0])

    def model() -> None:
        with ember.plate("N", 4, subsample_size=2):
            ember.sample("z", dist.Normal(0.0, 1.0))

    def guide() -> None:
        with ember.plate("N", 4, subsample_size=2) as idx, poutine.mask(mask=idx > 0):
            ember.sample("z", dist.Normal(locs[idx], 1.0))

    ember.set_rng_seed(0)
    idx = torch.randperm(4)[:2]
    ember.set_rng_seed(0)
    loss = TraceMeanField_ELBO().loss(model, guide)
    kept = locs[idx][idx > 0]
    assert loss == pytest.approx(2.0 * float((0.5 * kept**2).sum()), rel=1e-6)


def test_auxiliary_guide_sites_contribute_their_entropy() -> None:
    def guide() -> None:
        u = ember.sample("u", dist.Normal(0.0, 2.0), infer={"is_auxiliary": True})
        ember.sample("z", dist.Normal(u, 1.0))

    ember.set_rng_seed(2)
    tr = poutine.trace(guide).get_trace()
    ember.set_rng_seed(2)
    loss = TraceMeanField_ELBO().loss(prior_model, guide)
    u = tr.nodes["u"]["value"]
    expected = 0.5 * (u**2) + dist.Normal(0.0, 2.0).log_prob(u)  # KL(N(u, 1) || N(0, 1)) + log q(u)
    assert loss == pytest.approx(expected.item(), rel=1e-5)


def test_non_reparameterized_guides_are_rejected() -> None:
    def model() -> None:
        ember.sample("b", dist.Bernoulli(0.5))

    with pytest.raises(NotImplementedError, match="All distributions in the guide must be fully reparameterized."):
        TraceMeanField_ELBO().loss(model, model)


def test_guide_sites_out_of_model_order_warn_like_pyro() -> None:
    def program(b: Backend) -> list[str]:
        def model() -> None:
            b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
            b.pyro.sample("c", b.dist.Normal(0.0, 1.0))

        def guide() -> None:
            b.pyro.sample("c", b.dist.Normal(0.0, 1.0))
            b.pyro.sample("a", b.dist.Normal(0.0, 1.0))

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            b.infer.TraceMeanField_ELBO().loss(model, guide)
        return [str(w.message) for w in record]

    ours, theirs = run_both(program)
    expected = (
        "Failed to verify mean field restriction on the guide. To eliminate this warning, ensure "
        "model and guide sites occur in the same order.\nModel sites:\n  a\n  cGuide sites:\n  c\n  a"
    )
    assert ours == theirs == [expected]

    def model() -> None:
        for name in "ac":
            ember.sample(name, dist.Normal(0.0, 1.0))

    def guide() -> None:
        for name in "ca":
            ember.sample(name, dist.Normal(0.0, 1.0))

    with pytest.warns(UserWarning, match="^Failed to verify mean field restriction on the guide"):
        TraceMeanField_ELBO().loss(model, guide)


def test_jit_variant_reproduces_the_eager_losses_and_gradients() -> None:
    def model(data: torch.Tensor) -> None:
        z = ember.sample("z", dist.Normal(0.0, 1.0))
        with ember.plate("N", len(data)):
            ember.sample("x", dist.Normal(z, 1.0), obs=data)

    def guide(data: torch.Tensor) -> None:
        normal_guide()

    data = torch.tensor([1.0, 2.0])
    results = []
    for elbo in (TraceMeanField_ELBO(), JitTraceMeanField_ELBO(ignore_jit_warnings=True)):
        ember.clear_param_store()
        ember.set_rng_seed(0)
        losses = [elbo.loss_and_grads(model, guide, data) for _ in range(3)]
        losses.append(elbo.loss(model, guide, data))
        grads = {n: leaf.grad.clone() for n, leaf in ember.get_param_store().named_parameters() if leaf.grad is not None}
        results.append((losses, grads))
    (eager_losses, eager_grads), (jit_losses, jit_grads) = results
    assert jit_losses == pytest.approx(eager_losses, rel=1e-6)
    assert sorted(jit_grads) == sorted(eager_grads) == ["loc", "scale"]
    assert all(torch.allclose(jit_grads[n], eager_grads[n]) for n in eager_grads)
