"""DCTAdam: the same steps as pyro-ppl's on the same gradients, with and without a time dim."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pyro.optim.dct_adam import DCTAdam as PyroDCTAdam

import ember
import ember.distributions as dist
from ember.infer import SVI, Trace_ELBO
from ember.optim import DCTAdam
from ember.optim.dct_adam import DCTAdam as EmberDCTAdam
from ember.optim.dct_adam import _next_fast_len, _transform_forward, _transform_inverse


def _run(optimizer_class: Any, shape: tuple[int, ...], dct_dim: int | None, subsample: dict[int, torch.Tensor] | None) -> torch.Tensor:
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(shape))
    if dct_dim is not None:
        p._pyro_dct_dim = dct_dim  # type: ignore[attr-defined]  # the marker attribute both libraries read
    if subsample is not None:
        p._pyro_subsample = subsample  # type: ignore[attr-defined]  # as above
    opt = optimizer_class([p], lr=0.05, clip_norm=2.0, lrd=0.99, subsample_aware=subsample is not None)
    for step in range(5):
        p.grad = torch.randn(shape) * (step + 1)
        opt.step()
    return p.detach().clone()


@pytest.mark.parametrize(
    "shape, dct_dim, subsample",
    [
        ((7, 3), -2, None),  # 7 is padded to the fast length 8
        ((6,), -1, None),
        ((4, 5), None, None),
        ((4, 5), None, {-2: torch.tensor([0, 2])}),
    ],
)
def test_steps_equal_pyros_on_the_same_gradients(shape: tuple[int, ...], dct_dim: int | None, subsample: Any) -> None:
    ours = _run(EmberDCTAdam, shape, dct_dim, subsample)
    theirs = _run(PyroDCTAdam, shape, dct_dim, subsample)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    if subsample is not None:  # rows outside the subsample never move
        torch.manual_seed(0)
        start = torch.randn(shape)
        assert torch.equal(ours[1], start[1]) and not torch.equal(ours[0], start[0])


def test_the_frequency_transform_round_trips_and_fast_lengths_have_factors_2_3_5() -> None:
    assert [_next_fast_len(n) for n in (1, 7, 11, 13, 17, 30, 31)] == [1, 8, 12, 15, 18, 30, 32]
    x = torch.randn(3, 7)
    both = _transform_forward(x, -1, 7)
    assert both.shape == (3, 7 + 8)
    # The inverse adds the time half and the inverted frequency half: 2x for a pure augmentation.
    assert torch.allclose(_transform_inverse(both, -1, 7), 2 * x, atol=1e-5)


def test_the_wrapper_trains_a_time_series_param_with_svi() -> None:
    data = torch.sin(torch.linspace(0, 3, 20))

    def model() -> None:
        ember.sample("x", dist.Normal(ember.param("trend", torch.zeros(20)), 0.1).to_event(1), obs=data)

    def guide() -> None:
        pass

    ember.param("trend", torch.zeros(20))
    leaf = dict(ember.get_param_store().named_parameters())["trend"]
    leaf._pyro_dct_dim = -1  # type: ignore[attr-defined]  # the marker DCTAdam reads
    svi = SVI(model, guide, DCTAdam({"lr": 0.1}), Trace_ELBO())
    first = svi.step()
    for _ in range(100):
        last = svi.step()
    assert last < 0.05 * first
