"""Tests for ember.distributions.transforms.normalize."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import Normalize
from tests.distributions.transforms._checks import assert_same_declarations, pyro_transforms


@pytest.mark.parametrize("p", [1, 2, 3.5])
def test_matches_pyro_including_the_zero_vector(p: float) -> None:
    ours, theirs = Normalize(p), pyro_transforms.Normalize(p)
    x = torch.randn(4, 3)
    x[1] = 0.0
    assert torch.allclose(ours(x), theirs(x))
    assert torch.equal(ours(x)[1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(torch.linalg.vector_norm(ours(x), ord=p, dim=-1), torch.ones(4))
    assert_same_declarations(ours, theirs)
    assert ours == Normalize(p) and ours != Normalize(p + 1) and ours.with_cache()._cache_size == 1
