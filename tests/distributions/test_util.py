"""Tests for ember.distributions.util: shapes, scaling/masking, validation switches."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions import util

# Pyro is an unannotated test oracle.
pyro_util: Any = importlib.import_module("pyro.distributions.util")


@pytest.mark.parametrize(
    ("shapes", "strict", "expected"),
    [
        ((), False, ()),
        (((2, 1), (3,)), False, (2, 3)),
        (((3,), (2, 3)), True, (2, 3)),
        (((1,), ()), False, (1,)),
        ((torch.Size([4, 1, 2]), (3, 1)), False, (4, 3, 2)),
        (((5,), (1,)), False, (5,)),
    ],
)
def test_broadcast_shape_matches_pyro(
    shapes: tuple[tuple[int, ...], ...], strict: bool, expected: tuple[int, ...]
) -> None:
    assert util.broadcast_shape(*shapes, strict=strict) == expected
    assert util.broadcast_shape(*shapes, strict=strict) == pyro_util.broadcast_shape(
        *shapes, strict=strict
    )


@pytest.mark.parametrize(
    ("shapes", "strict"),
    [
        (((2, 3), (4, 3), (1,)), False),
        (((2, 1), (2, 3)), True),
        ((torch.Size([2]), torch.Size([3])), False),
    ],
)
def test_broadcast_shape_error_text_matches_pyro(
    shapes: tuple[tuple[int, ...], ...], strict: bool
) -> None:
    with pytest.raises(ValueError) as ours:
        util.broadcast_shape(*shapes, strict=strict)
    with pytest.raises(ValueError) as theirs:
        pyro_util.broadcast_shape(*shapes, strict=strict)
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value).startswith(
        "shape mismatch: objects cannot be broadcast to a single shape: "
    )


@pytest.mark.parametrize("dim", [0, 1, 2, 3, 5, -1, -2, float("inf")])
def test_sum_rightmost_matches_pyro(dim: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4)
    expected = pyro_util.sum_rightmost(x, dim)
    assert torch.allclose(util.sum_rightmost(x, dim), expected)


def test_sum_rightmost_shapes_and_numbers() -> None:
    x = torch.ones(2, 3, 4)
    assert util.sum_rightmost(x, 1).shape == (2, 3)
    assert util.sum_rightmost(x, -1).shape == (2,)
    assert util.sum_rightmost(x, 0) is x
    assert util.sum_rightmost(x, float("inf")).item() == 24.0
    assert util.sum_rightmost(2.5, 3) == 2.5


def test_is_identically_zero_and_one() -> None:
    assert util.is_identically_zero(0) and util.is_identically_zero(0.0)
    assert util.is_identically_zero(torch.tensor(0))
    assert not util.is_identically_zero(torch.tensor(0.0))  # only int64 scalars are trusted
    assert not util.is_identically_zero(torch.zeros(1, dtype=torch.long))
    assert not util.is_identically_zero(1)
    assert util.is_identically_one(1) and util.is_identically_one(1.0)
    assert util.is_identically_one(torch.tensor(1))
    assert not util.is_identically_one(torch.tensor(1.0))
    assert not util.is_identically_one("1")


def test_scale_and_mask_returns_input_when_nothing_to_do() -> None:
    x = torch.randn(3)
    assert util.scale_and_mask(x) is x
    assert util.scale_and_mask(x, 1) is x
    assert util.scale_and_mask(x, torch.tensor(1)) is x
    assert util.scale_and_mask(0, 5.0, torch.tensor([True])) == 0


def test_scale_and_mask_scales_without_mask_or_with_true() -> None:
    x = torch.tensor([1.0, 2.0])
    assert torch.equal(util.scale_and_mask(x, 3.0), torch.tensor([3.0, 6.0]))
    assert torch.equal(util.scale_and_mask(x, 3.0, True), torch.tensor([3.0, 6.0]))
    assert util.scale_and_mask(2.0, 3.0) == 6.0


def test_scale_and_mask_false_gives_zeros_like() -> None:
    x = torch.tensor([1.0, float("nan")], dtype=torch.float64)
    result = util.scale_and_mask(x, 2.0, False)
    assert torch.equal(result, torch.zeros(2, dtype=torch.float64))


def test_scale_and_mask_tensor_mask_does_not_propagate_nan() -> None:
    log_prob = torch.tensor([1.0, float("nan"), float("-inf")])
    mask = torch.tensor([True, False, False])
    result = util.scale_and_mask(log_prob, 2.0, mask)
    assert torch.equal(result, torch.tensor([2.0, 0.0, 0.0]))
    assert result.sum().item() == 2.0


def test_scale_and_mask_tensor_mask_zeroes_gradients_of_masked_entries() -> None:
    x = torch.tensor([1.0, 5.0], requires_grad=True)
    result = util.scale_and_mask(x * x, 2.0, torch.tensor([True, False]))
    (grad,) = torch.autograd.grad(result.sum(), [x])
    assert torch.equal(grad, torch.tensor([4.0, 0.0]))


def test_scale_and_mask_matches_pyro_probe() -> None:
    # Three standard-normal observations at 0, mask [T, F, T], scale 2 * 3.
    log_prob = dist.Normal(0.0, 1.0).log_prob(torch.zeros(3))
    mask = torch.tensor([True, False, True])
    ours = util.scale_and_mask(log_prob, 6.0, mask).sum()
    assert ours.item() == pytest.approx(-11.0273, abs=1e-4)
    assert torch.equal(ours, pyro_util.scale_and_mask(log_prob, 6.0, mask).sum())


def test_scale_and_mask_broadcasts_mask() -> None:
    x = torch.ones(2, 3)
    result = util.scale_and_mask(x, torch.tensor(2.0), torch.tensor([True, False, True]))
    assert torch.equal(result, torch.tensor([[2.0, 0.0, 2.0], [2.0, 0.0, 2.0]]))


def test_validation_switches_use_torch_default() -> None:
    previous = util.is_validation_enabled()
    try:
        util.enable_validation(False)
        assert not util.is_validation_enabled()
        assert torch.distributions.Distribution._validate_args is False
        torch.distributions.Normal(0.0, -1.0)  # no error while validation is off
        util.enable_validation(True)
        assert util.is_validation_enabled()
        with pytest.raises(ValueError):
            torch.distributions.Normal(0.0, -1.0)
    finally:
        util.enable_validation(previous)


@pytest.mark.parametrize("setting", [True, False])
def test_validation_enabled_restores_previous_setting(setting: bool) -> None:
    previous = util.is_validation_enabled()
    with util.validation_enabled(setting):
        assert util.is_validation_enabled() is setting
    assert util.is_validation_enabled() is previous
    with pytest.raises(RuntimeError), util.validation_enabled(not previous):
        raise RuntimeError("boom")
    assert util.is_validation_enabled() is previous


def test_validation_enabled_defaults_to_true() -> None:
    previous = util.is_validation_enabled()
    try:
        util.enable_validation(False)
        with util.validation_enabled():
            assert util.is_validation_enabled()
        assert not util.is_validation_enabled()
    finally:
        util.enable_validation(previous)


# The helpers Pyro's distributions.util also provides.


def test_sum_leftmost_matches_pyro() -> None:
    x = torch.randn(2, 3, 4)
    for dim in (0, 1, 2, 3, -1, -2, float("inf")):
        torch.testing.assert_close(util.sum_leftmost(x, dim), pyro_util.sum_leftmost(x, dim))
    assert util.sum_leftmost(2.5, 1) == 2.5


def test_broadcast_all_gather_scalar_like_eye_like_match_pyro() -> None:
    shapes = [v.shape for v in util.broadcast_all(torch.zeros(2, 1), 3.0, torch.ones(4))]
    assert shapes == [torch.Size([2, 4])] * 3
    value, index = torch.randn(3, 4), torch.tensor([[2], [0], [3]])
    torch.testing.assert_close(util.gather(value, index, -1), pyro_util.gather(value, index, -1))
    like = torch.zeros(2, dtype=torch.float64)
    assert util.scalar_like(like, 2).dtype == torch.float64 and float(util.scalar_like(like, 2)) == 2.0
    for m, n in ((3, None), (2, 4), (4, 2)):
        torch.testing.assert_close(util.eye_like(like, m, n), pyro_util.eye_like(like, m, n))
    assert util.logsumexp is torch.logsumexp


def test_detach_and_deep_to_map_every_tensor_once() -> None:
    x = torch.ones(2, requires_grad=True)
    module = torch.nn.Linear(2, 1)
    obj: dict[str, Any] = {"a": x, "b": [x, (x * 2,)], "m": module, "n": 3}
    detached = util.detach(obj)
    assert not detached["a"].requires_grad and detached["a"] is detached["b"][0]
    assert detached["n"] == 3 and detached["a"].data_ptr() == x.data_ptr()
    moved = util.deep_to(obj, torch.float64)
    assert moved["a"].dtype == torch.float64 and moved["b"][1][0].dtype == torch.float64
    assert moved["m"].weight.dtype == torch.float64 and x.dtype == torch.float32


def test_weakmethod_binds_weakly_and_refuses_overwrites() -> None:
    import gc
    import weakref

    class Foo:
        def __init__(self) -> None:
            self.callback = self._callback

        @util.weakmethod
        def _callback(self, x: int) -> int:
            return x * 2

    foo = Foo()
    assert foo.callback(3) == 6
    reference = weakref.ref(foo)
    callback = foo.callback
    del foo
    gc.collect()
    assert reference() is None
    with pytest.raises(AttributeError, match="garbage collected"):
        callback(1)
    bar = Foo()
    with pytest.raises(AttributeError, match="cannot overwrite weakmethod _callback"):
        bar._callback = lambda x: x


def test_copy_docs_from_fills_only_missing_docs() -> None:
    class Source:
        def f(self) -> None:
            """Does f."""

        def g(self) -> None:
            """Does g."""

    @util.copy_docs_from(Source)
    class Target(Source):
        def f(self) -> None:
            pass

        def g(self) -> None:
            """Own g."""

    assert Target.f.__doc__ is not None and Target.f.__doc__.endswith("Source.f`")
    assert Target.g.__doc__ == "Own g."


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_jit_helpers() -> None:
    with util.ignore_jit_warnings(["some warning"]):
        pass

    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    scripted = util.torch_jit_script_if_tracing(double)
    torch.testing.assert_close(scripted(torch.ones(2)), torch.full((2,), 2.0))
    traced = torch.jit.trace(lambda x: scripted(x) + 1, (torch.ones(2),))  # type: ignore[no-untyped-call]  # torch: unannotated
    torch.testing.assert_close(traced(torch.ones(2)), torch.full((2,), 3.0))
