"""``conjugate_update``: prior x likelihood = posterior x exp(log_normalizer), pointwise."""

from __future__ import annotations

from typing import Any, Callable

import pyro
import pyro.distributions
import pyro.infer.reparam
import pyro.poutine
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.reparam import ConjugateReparam


def _beta(*shape: int) -> Any:
    return dist.Beta(torch.rand(shape) * 3 + 0.5, torch.rand(shape) * 3 + 0.5)


def _gamma(*shape: int) -> Any:
    return dist.Gamma(torch.rand(shape) * 3 + 0.5, torch.rand(shape) * 3 + 0.5)


def _dirichlet(*shape: int) -> Any:
    return dist.Dirichlet(torch.rand(*shape, 4) * 3 + 0.5)


@pytest.mark.parametrize("make", [_beta, _gamma, _dirichlet, lambda *s: _beta(*s, 3).to_event(1)])
def test_update_is_exact_at_every_point_and_equals_pyros(make: Callable[..., Any]) -> None:
    torch.manual_seed(0)
    prior, likelihood = make(5), make(5)
    posterior, log_normalizer = prior.conjugate_update(likelihood)
    z = prior.sample()
    torch.testing.assert_close(prior.log_prob(z) + likelihood.log_prob(z), posterior.log_prob(z) + log_normalizer)
    assert type(posterior) is type(prior) and posterior.batch_shape == prior.batch_shape
    theirs = getattr(pyro.distributions, type(prior).__name__)
    if type(prior).__name__ != "Independent":
        params = [getattr(prior, k) for k in prior.arg_constraints]
        other = [getattr(likelihood, k) for k in likelihood.arg_constraints]
        _, their_normalizer = theirs(*params).conjugate_update(theirs(*other))
        torch.testing.assert_close(log_normalizer, their_normalizer)


def test_update_with_another_family_is_a_type_error_naming_both() -> None:
    with pytest.raises(TypeError, match="Beta.conjugate_update needs a Beta likelihood, got Gamma"):
        dist.Beta(2.0, 2.0).conjugate_update(dist.Gamma(2.0, 2.0))


def test_conjugate_reparam_of_a_beta_prior_matches_pyro() -> None:
    def run(backend: Any, handlers: Any, reparam_cls: Any) -> torch.Tensor:
        d = backend.distributions

        def model() -> None:
            p = backend.sample("p", d.Beta(2.0, 2.0))
            backend.sample("x", d.Bernoulli(p), obs=torch.tensor(1.0))

        def likelihood() -> Any:
            return d.Beta(torch.tensor(2.0), torch.tensor(1.0))

        reparamed = handlers.reparam(model, config={"p": reparam_cls(likelihood)})
        torch.manual_seed(3)
        tr = handlers.trace(reparamed).get_trace()
        total: torch.Tensor = tr.log_prob_sum()
        return total

    ours = run(ember, poutine, ConjugateReparam)
    theirs = run(pyro, pyro.poutine, pyro.infer.reparam.ConjugateReparam)
    torch.testing.assert_close(ours, theirs)


def _pyro_beta(prior: Any) -> Any:
    return pyro.distributions.Beta(prior.concentration1, prior.concentration0)


def test_a_masked_prior_updates_its_base_and_stays_masked_as_in_pyro() -> None:
    torch.manual_seed(1)
    base, likelihood = _beta(4), _beta(4)
    mask = torch.tensor([True, False, True, False])
    posterior, log_normalizer = base.mask(mask).conjugate_update(likelihood)
    theirs, their_normalizer = _pyro_beta(base).mask(mask).conjugate_update(_pyro_beta(likelihood))
    torch.testing.assert_close(log_normalizer, their_normalizer)
    assert type(posterior).__name__ == "MaskedDistribution" and torch.equal(posterior._mask, mask)
    z = base.sample()
    torch.testing.assert_close(posterior.log_prob(z), theirs.log_prob(z))
    # Unmasked entries: the exact identity; masked ones: no prior, no normalizer.
    exact = base.log_prob(z) + likelihood.log_prob(z)
    torch.testing.assert_close((posterior.log_prob(z) + log_normalizer)[mask], exact[mask])
    assert torch.equal(log_normalizer[~mask], torch.zeros(2))


@pytest.mark.parametrize("flag", [True, False])
def test_a_bool_masked_prior_updates_too(flag: bool) -> None:
    # pyro-ppl 1.9.2 raises a TypeError here (torch.where on a bool); a bool mask is the tensor mask's limit.
    torch.manual_seed(2)
    base, likelihood = _beta(3), _beta(3)
    posterior, log_normalizer = base.mask(flag).conjugate_update(likelihood)
    reference, reference_normalizer = base.mask(torch.full((3,), flag)).conjugate_update(likelihood)
    z = base.sample()
    torch.testing.assert_close(log_normalizer, reference_normalizer)
    torch.testing.assert_close(posterior.log_prob(z), reference.log_prob(z))


def test_an_expanded_prior_updates_to_its_batch_shape_as_in_pyro() -> None:
    torch.manual_seed(3)
    base, likelihood = _beta(1), _beta(5)
    prior = dist.ExpandedDistribution(base, [5])
    posterior, log_normalizer = prior.conjugate_update(likelihood)
    z = prior.sample()
    assert posterior.batch_shape == (5,) and log_normalizer.shape == (5,)
    torch.testing.assert_close(prior.log_prob(z) + likelihood.log_prob(z), posterior.log_prob(z) + log_normalizer)
    pyro_dist: Any = pyro.distributions  # pyro-ppl is not fully annotated
    theirs = pyro_dist.ExpandedDistribution(_pyro_beta(base), [5])
    their_posterior, their_normalizer = theirs.conjugate_update(_pyro_beta(likelihood))
    torch.testing.assert_close(log_normalizer, their_normalizer)
    torch.testing.assert_close(posterior.log_prob(z), their_posterior.log_prob(z))
