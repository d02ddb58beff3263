"""Bad programs raise the same error type and text in Ember as in pyro-ppl.

:func:`~tests.parity._backends.assert_same_error` also checks that Ember's handler stack,
plate allocator and param store are as they were before the failing program ran.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.parity._backends import Backend, assert_same_error


def _traced(b: Backend, body: Any) -> Any:
    return b.poutine.trace(body).get_trace()


def test_duplicate_sample_site_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
            b.pyro.sample("a", b.dist.Normal(0.0, 1.0))

        return _traced(b, model)

    ours, _ = assert_same_error(program)
    assert isinstance(ours, RuntimeError)
    assert "Multiple sample sites named 'a'" in str(ours)


def test_sample_after_param_of_same_name_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.param("a", torch.tensor(1.0))
            b.pyro.sample("a", b.dist.Normal(0.0, 1.0))

        return _traced(b, model)

    assert_same_error(program)


def test_duplicate_plate_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.pyro.plate("a", 3), b.pyro.plate("a", 3):
            pass

    assert_same_error(program)


@pytest.mark.parametrize("traced", [False, True], ids=["bare", "traced"])
def test_plate_dim_collision_error_matches_pyro(traced: bool) -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.param("kept", torch.tensor(1.0))
            with b.pyro.plate("a", 3, dim=-1), b.pyro.plate("b", 4, dim=-1):
                b.pyro.sample("x", b.dist.Normal(0.0, 1.0))

        return _traced(b, model) if traced else model()

    ours, _ = assert_same_error(program)
    assert 'at plates "b" and "a", collide at dim=-1' in str(ours)


def test_plate_dim_not_negative_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.pyro.plate("a", 3, dim=0):
            pass

    assert_same_error(program)


def test_plate_of_size_zero_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.pyro.plate("a", 0):
            pass

    assert_same_error(program)


def test_subsample_size_disagreeing_with_subsample_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.pyro.plate("a", 10, subsample_size=2, subsample=torch.tensor([1, 2, 3])):
            pass

    assert_same_error(program)


@pytest.mark.parametrize("handler", ["mask", "scale", "condition", "block", "trace"])
def test_non_callable_to_handler_error_matches_pyro(handler: str) -> None:
    arg: Any = {"mask": False, "scale": 2.0, "condition": 3, "block": 1.5, "trace": 7}[handler]

    def program(b: Backend) -> Any:
        return getattr(b.poutine, handler)(arg)

    ours, _ = assert_same_error(program)
    assert "not callable" in str(ours)


@pytest.mark.parametrize("scale", [0.0, -1.0, torch.tensor([1.0, -1.0])], ids=["zero", "negative", "tensor"])
def test_non_positive_scale_error_matches_pyro(scale: Any) -> None:
    def program(b: Backend) -> Any:
        return b.poutine.scale(scale=scale)

    ours, _ = assert_same_error(program)
    assert "Expected scale > 0 but got" in str(ours)


@pytest.mark.parametrize("mask", [torch.tensor([1.0, 0.0]), 1.5, "yes"], ids=["float_tensor", "float", "str"])
def test_non_bool_mask_error_matches_pyro(mask: Any) -> None:
    def program(b: Backend) -> Any:
        return b.poutine.mask(mask=mask)

    assert_same_error(program)


@pytest.mark.parametrize("traced", [False, True], ids=["bare", "traced"])
def test_unknown_param_without_init_error_matches_pyro(traced: bool) -> None:
    def program(b: Backend) -> Any:
        def model() -> Any:
            b.pyro.param("known", torch.tensor(1.0))
            return b.pyro.param("missing")

        return _traced(b, model) if traced else model()

    ours, _ = assert_same_error(program)
    assert isinstance(ours, KeyError)


@pytest.mark.parametrize("traced", [False, True], ids=["bare", "traced"])
def test_shape_mismatch_inside_plate_error_matches_pyro(traced: bool) -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.sample("ok", b.dist.Normal(0.0, 1.0))
            with b.pyro.plate("k", 3):
                b.pyro.sample("bad", b.dist.Normal(torch.zeros(4), 1.0))

        return _traced(b, model) if traced else model()

    ours, _ = assert_same_error(program)
    assert "Shape mismatch inside plate('k') at site bad dim -1, 3 vs 4" in str(ours)


def test_invalid_param_shape_inside_plate_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            with b.pyro.plate("N", 10, subsample_size=2):
                b.pyro.param("bad", torch.zeros(4), event_dim=0)

        return _traced(b, model)

    ours, _ = assert_same_error(program)
    assert "invalid shape of pyro.param" in str(ours)


def test_invalid_obs_mask_shape_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            with b.pyro.plate("N", 3):
                b.pyro.sample("y", b.dist.Normal(0.0, 1.0), obs=torch.zeros(3), obs_mask=torch.tensor([True, False]))

        return _traced(b, model)

    ours, _ = assert_same_error(program)
    assert "Invalid obs_mask shape" in str(ours)


def test_error_raised_by_model_is_augmented_with_shapes_like_pyro() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
            raise ValueError("oops")

        return _traced(b, model)

    ours, theirs = assert_same_error(program)
    assert str(ours) == str(theirs)
    assert isinstance(ours.__cause__, ValueError)


def test_log_prob_sum_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        tr = b.poutine.trace(lambda: b.pyro.sample("x", b.dist.Normal(0.0, 1.0))).get_trace()
        tr.nodes["x"]["value"] = torch.zeros(5)
        tr.nodes["x"]["fn"] = b.dist.Normal(torch.zeros(3), 1.0)
        return tr.log_prob_sum()

    assert_same_error(program)


def test_handler_error_inside_nested_handlers_leaves_stack_clean_like_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.poutine.trace(), b.poutine.scale(scale=2.0), b.pyro.plate("p", 2):
            with b.poutine.mask(mask=True), b.poutine.block():
                b.pyro.param("never_stored")

    assert_same_error(program)


def test_block_with_hide_fn_and_expose_fn_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.block(hide_fn=lambda msg: True, expose_fn=lambda msg: True)

    assert_same_error(program)


def test_block_hiding_and_exposing_one_site_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.block(hide=["a"], expose=["a"])

    assert_same_error(program)


def test_block_expose_all_without_hide_all_false_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.block(expose_all=True)

    assert_same_error(program)


def test_trace_with_unknown_graph_type_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.trace(lambda: None, graph_type="sparse")

    assert_same_error(program)


def test_condition_given_only_a_dict_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.condition({"a": torch.tensor(1.0)})

    assert_same_error(program)


@pytest.mark.parametrize("traced", [False, True], ids=["bare", "traced"])
def test_sample_from_a_non_distribution_error_matches_pyro(traced: bool) -> None:
    def program(b: Backend) -> Any:
        def model() -> Any:
            return b.pyro.sample("x", 3.0)

        return _traced(b, model) if traced else model()

    assert_same_error(program)


def test_plate_used_vectorized_then_sequential_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        q = b.pyro.plate("q", 2)
        with q:
            pass
        for _ in q:
            pass

    assert_same_error(program)


def test_replay_of_an_observed_guide_site_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.sample("z", b.dist.Normal(0.0, 1.0))

        def observed() -> None:
            b.pyro.sample("z", b.dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

        guide_tr = b.poutine.trace(observed).get_trace()
        return b.poutine.trace(b.poutine.replay(model, trace=guide_tr)).get_trace()

    assert_same_error(program)


def test_subsample_data_of_wrong_size_error_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.pyro.plate("N", 10, subsample_size=2):
            return b.pyro.subsample(torch.zeros(4), event_dim=0)

    assert_same_error(program)
