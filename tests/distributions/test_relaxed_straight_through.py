"""Tests for the straight-through relaxed distributions (relaxed_straight_through.py)."""

from __future__ import annotations

import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, pyro_dist


def test_one_hot_samples_are_hard_with_the_relaxed_gradient_and_log_prob() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    temperature = torch.tensor(0.5)
    d = dist.RelaxedOneHotCategoricalStraightThrough(temperature, logits=logits)
    torch.manual_seed(11)
    hard = d.rsample((2,))
    torch.manual_seed(11)
    soft = dist.RelaxedOneHotCategorical(temperature, logits=logits).rsample((2,))
    assert bool(((hard == 0) | (hard == 1)).all()) and bool((hard.sum(-1) == 1).all())
    assert_close(hard.argmax(-1).float(), soft.argmax(-1).float())
    weights = torch.randn(2, 4, 3)
    (grad_hard,) = torch.autograd.grad((hard * weights).sum(), logits)
    (grad_soft,) = torch.autograd.grad((soft * weights).sum(), logits)
    assert_close(grad_hard, grad_soft, atol=1e-4)
    p = pyro_dist.RelaxedOneHotCategoricalStraightThrough(temperature, logits=logits)
    assert_close(d.log_prob(hard), p.log_prob(hard.detach().clone().copy_(soft.detach()) ))
    assert_close(d.log_prob(hard), dist.RelaxedOneHotCategorical(temperature, logits=logits).log_prob(soft))


def test_bernoulli_samples_are_hard_with_the_relaxed_gradient_and_log_prob() -> None:
    probs = torch.tensor([0.2, 0.5, 0.9], requires_grad=True)
    temperature = torch.tensor(0.3)
    d = dist.RelaxedBernoulliStraightThrough(temperature, probs=probs)
    torch.manual_seed(12)
    hard = d.rsample((5,))
    torch.manual_seed(12)
    soft = dist.RelaxedBernoulli(temperature, probs=probs).rsample((5,))
    assert bool(((hard == 0) | (hard == 1)).all())
    assert_close(hard, soft.round())
    (grad_hard,) = torch.autograd.grad(hard.sum(), probs)
    (grad_soft,) = torch.autograd.grad(soft.sum(), probs)
    assert_close(grad_hard, grad_soft, atol=1e-4)
    p = pyro_dist.RelaxedBernoulliStraightThrough(temperature, probs=probs)
    value = torch.rand(3) * 0.9 + 0.05
    assert_close(d.log_prob(value), p.log_prob(value))
    assert_close(d.log_prob(hard), dist.RelaxedBernoulli(temperature, probs=probs).log_prob(soft))
