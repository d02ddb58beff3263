"""Tests for OrderedLogistic (ordered_logistic.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, assert_fits_pmf, assert_log_prob_matches_pyro, pyro_dist

_PREDICTOR = torch.tensor([-1.0, 0.0, 2.0])
_CUTPOINTS = torch.tensor([[-2.0, 0.0, 1.0], [-0.5, 0.5, 3.0], [0.0, 1.0, 1.5]])


def test_probabilities_and_log_prob_match_pyro_and_the_cdf_differences() -> None:
    d = dist.OrderedLogistic(_PREDICTOR, _CUTPOINTS)
    p = pyro_dist.OrderedLogistic(_PREDICTOR, _CUTPOINTS)
    assert_log_prob_matches_pyro(d, p, torch.tensor([[0.0, 3.0, 1.0], [2.0, 2.0, 0.0]]))
    cdf = torch.sigmoid(_CUTPOINTS - _PREDICTOR.unsqueeze(-1))
    assert_close(d.probs.cumsum(-1)[..., :-1], cdf)
    assert_close(d.enumerate_support(), p.enumerate_support())
    expanded = d.expand((2, 3))
    assert type(expanded) is dist.OrderedLogistic and expanded.batch_shape == (2, 3)
    assert expanded.cutpoints.shape == (2, 3, 3) and expanded.predictor.shape == (2, 3)


def test_samples_fit_the_probabilities() -> None:
    d = dist.OrderedLogistic(_PREDICTOR, _CUTPOINTS)
    assert_fits_pmf(d.sample((4000,)), d.log_prob)


def test_unordered_cutpoints_raise() -> None:
    with pytest.raises(ValueError, match="parameter cutpoints .* of distribution OrderedLogistic"):
        dist.OrderedLogistic(_PREDICTOR, _CUTPOINTS.flip(-1))
