from __future__ import annotations

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine


def test_scale_multiplies_and_applies_to_params() -> None:
    def m() -> None:
        ember.param("p", torch.tensor(1.0))
        ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    with poutine.trace() as tracer, poutine.scale(scale=2.0), poutine.mask(mask=False):
        with poutine.scale(scale=torch.tensor(3.0)):
            m()
    assert tracer.trace.nodes["p"]["scale"] == 6.0 and tracer.trace.nodes["p"]["mask"] is False
    assert tracer.trace.log_prob_sum() == 0.0


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_scale_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match=f"Expected scale > 0 but got {bad}"):
        poutine.scale(scale=bad)


def test_tensor_scale_checked_under_validation() -> None:
    with pytest.raises(ValueError, match="Consider using poutine.mask"):
        poutine.scale(scale=torch.tensor([1.0, -1.0]))
    with ember.validation_enabled(False):
        poutine.scale(scale=torch.tensor([1.0, -1.0]))


def test_mask_combines_with_and() -> None:
    with poutine.mask(mask=torch.tensor([True, False, True])), poutine.mask(mask=torch.tensor([True, True, False])):
        assert torch.equal(poutine.get_mask(), torch.tensor([True, False, False]))  # type: ignore[arg-type]  # tensor here


def test_mask_rejects_non_bool() -> None:
    with pytest.raises(ValueError, match=r"Expected mask to be a BoolTensor but got <class 'torch.Tensor'> \(dtype torch.float32"):
        poutine.mask(mask=torch.tensor([1.0]))
    with pytest.raises(ValueError, match="Expected mask to be a boolean"):
        poutine.mask(mask="yes")  # type: ignore[call-overload]  # deliberately wrong
    poutine.mask(mask=1)  # type: ignore[call-overload]  # 1 == True passes at runtime, as in Pyro


@pytest.mark.parametrize("handler", [poutine.mask, poutine.scale])
def test_positional_non_callable_is_not_callable_error(handler: object) -> None:
    with pytest.raises(ValueError, match="not callable"):
        handler(False)  # type: ignore[operator]  # deliberately wrong


def test_masked_log_prob_sum_matches_hand_computation() -> None:
    def m() -> None:
        with poutine.scale(scale=2.0), poutine.mask(mask=torch.tensor([True, False, True])):
            with ember.plate("data", 3), poutine.scale(scale=3.0):
                ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.zeros(3))

    value = poutine.trace(m).get_trace().log_prob_sum()
    assert torch.allclose(torch.as_tensor(value), torch.tensor(-11.0273), atol=1e-4)
