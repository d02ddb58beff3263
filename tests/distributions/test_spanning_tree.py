"""Tests for SpanningTree (spanning_tree.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions.spanning_tree import (
    NUM_SPANNING_TREES,
    enumerate_spanning_trees,
    find_best_tree,
    sample_tree,
    sample_tree_approx,
    sample_tree_mcmc,
)

pyro_dist: Any = importlib.import_module("pyro.distributions")
pyro_spanning_tree: Any = importlib.import_module("pyro.distributions.spanning_tree")


@pytest.mark.parametrize("num_vertices", [1, 2, 3, 4, 5, 6])
def test_enumeration_matches_pyro_and_cayley(num_vertices: int) -> None:
    trees = enumerate_spanning_trees(num_vertices)
    assert trees == pyro_spanning_tree.enumerate_spanning_trees(num_vertices)
    assert len(trees) == max(1, num_vertices ** (num_vertices - 2)) == NUM_SPANNING_TREES[num_vertices]
    assert NUM_SPANNING_TREES == pyro_spanning_tree.NUM_SPANNING_TREES


@pytest.mark.parametrize("num_vertices", [2, 3, 4, 5])
def test_log_prob_matches_pyro_and_normalizes(num_vertices: int) -> None:
    logits = torch.randn(num_vertices * (num_vertices - 1) // 2)
    ours, theirs = dist.SpanningTree(logits), pyro_dist.SpanningTree(logits)
    support = ours.enumerate_support()
    assert torch.equal(support, theirs.enumerate_support())
    assert torch.allclose(ours.log_prob(support), theirs.log_prob(support), atol=1e-5)
    assert abs(float(ours.log_prob(support).logsumexp(0))) < 1e-5


def test_mode_and_edge_mean_match_brute_force() -> None:
    logits = torch.randn(10, dtype=torch.float64)
    d = dist.SpanningTree(logits)
    support = d.enumerate_support()
    probs = d.log_prob(support).exp()
    assert torch.equal(d.mode, support[probs.argmax()])
    marginal = torch.zeros(5, 5, dtype=torch.float64)
    for tree, p in zip(support, probs):
        marginal[tree[:, 0], tree[:, 1]] += p
        marginal[tree[:, 1], tree[:, 0]] += p
    assert torch.allclose(d.edge_mean, marginal, atol=1e-8)


def test_samples_pass_a_chi_square_test_against_the_exact_distribution() -> None:
    torch.manual_seed(0)
    d = dist.SpanningTree(torch.randn(6) * 0.7)
    support = d.enumerate_support()
    draws = d.sample((800,))
    assert draws.shape == (800, 3, 2)
    counts = (draws[:, None] == support[None]).flatten(2).all(-1).sum(0).double()
    expected = d.log_prob(support).exp().double() * 800
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert counts.sum() == 800
    assert chi2 < 37.7  # the 99.9% quantile of chi-square with 15 degrees of freedom


def test_gibbs_sweeps_from_a_fixed_tree_keep_valid_trees() -> None:
    logits = torch.randn(10)
    start = find_best_tree(logits)
    d = dist.SpanningTree(logits, sampler_options={"init_edges": start, "mcmc_steps": 3})
    for tree in d.sample((5,)):
        d.validate_edges(tree)
    assert sample_tree(logits, init_edges=start, mcmc_steps=0) is start
    d.validate_edges(sample_tree_mcmc(logits, sample_tree_approx(logits)))
    with pytest.raises(ValueError, match="unknown backend"):
        sample_tree(logits, backend="cpp")


@pytest.mark.parametrize(
    "edges, message",
    [
        (torch.tensor([[0, 1], [0, 1], [1, 2]]), "sorted colexicographically"),
        (torch.tensor([[1, 0], [0, 2], [1, 2]]), "not sorted in each edge"),
        (torch.tensor([[0, 1], [0, 2], [1, 2]]), "do not constitute a tree"),
        (torch.tensor([[0, 1], [0, 2], [1, 7]]), "Invalid vertex ids"),
        (torch.tensor([[0, 1], [0, 2]]), "Invalid edges shape"),
    ],
)
def test_invalid_trees_are_rejected(edges: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dist.SpanningTree(torch.zeros(6)).log_prob(edges)


def test_bad_edge_logits_shape() -> None:
    with pytest.raises(ValueError, match=r"edge_logits of shape.*\(4,\)"):
        dist.SpanningTree(torch.zeros(4))


def test_uniform_trees_have_cayley_probability() -> None:
    d = dist.SpanningTree(torch.zeros(10))
    assert math.isclose(float(d.log_prob(d.mode).exp()), 1 / 125, rel_tol=1e-5)
