"""Behaviour of :class:`ember.params.ParamStoreDict` (persistence: test_persistence.py; Pyro: test_parity.py)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, cast

import pytest
import torch
from torch.distributions import constraints, transform_to
from torch.distributions.constraints import Constraint

from ember.params import ParamStoreDict


def make_constraint(factory: object, *args: object) -> Constraint:
    """Call a torch constraint class, which torch leaves unannotated."""
    return cast(Callable[..., Constraint], factory)(*args)


def _unconstrained(value: torch.Tensor) -> torch.Tensor:
    ref = getattr(value, "unconstrained")
    assert isinstance(ref, weakref.ref)
    leaf = ref()
    assert isinstance(leaf, torch.Tensor)
    return leaf


# Each constraint with a value that satisfies it.
CONSTRAINED_VALUES: list[tuple[Constraint, torch.Tensor]] = [
    (constraints.real, torch.tensor([-1.5, 0.0, 2.0])),
    (constraints.positive, torch.tensor([0.5, 1.0, 3.0])),
    (make_constraint(constraints.greater_than, -1.0), torch.tensor([-0.5, 2.0])),
    (make_constraint(constraints.less_than, 2.0), torch.tensor([1.0, -3.0])),
    (make_constraint(constraints.interval, -1.0, 3.0), torch.tensor([0.0, 2.5])),
    (constraints.unit_interval, torch.tensor([0.25, 0.75])),
    (constraints.simplex, torch.tensor([0.2, 0.3, 0.5])),
    (constraints.lower_cholesky, torch.tensor([[2.0, 0.0], [0.5, 1.5]])),
    (constraints.positive_definite, torch.tensor([[2.0, 0.5], [0.5, 1.0]])),
    (constraints.corr_cholesky, torch.tensor([[1.0, 0.0], [0.6, 0.8]])),
    (constraints.real_vector, torch.tensor([1.0, 2.0])),
    (make_constraint(constraints.independent, constraints.positive, 1), torch.tensor([[1.0, 2.0]])),
]
CONSTRAINT_IDS = [type(c).__name__.strip("_") + str(i) for i, (c, _) in enumerate(CONSTRAINED_VALUES)]


def filled_store() -> ParamStoreDict:
    store = ParamStoreDict()
    for i, (constraint, value) in enumerate(CONSTRAINED_VALUES):
        store.setdefault(f"p{i}", value, constraint)
    return store


def assert_same_constraint(actual: Constraint, expected: Constraint) -> None:
    assert type(actual) is type(expected)
    assert repr(actual) == repr(expected)
    assert vars(actual).keys() == vars(expected).keys()


# -- values, leaves, constraints -------------------------------------------------------------


@pytest.mark.parametrize(("constraint", "value"), CONSTRAINED_VALUES, ids=CONSTRAINT_IDS)
def test_setdefault_stores_unconstrained_leaf_and_reads_back_constrained_value(
    constraint: Constraint, value: torch.Tensor
) -> None:
    store = ParamStoreDict()
    read = store.setdefault("p", value, constraint)
    assert torch.allclose(read, value, atol=1e-5)
    leaf = store._params["p"]
    assert leaf.is_leaf and leaf.requires_grad and leaf.is_contiguous()
    assert torch.allclose(leaf, transform_to(constraint).inv(value))
    assert store._constraints["p"] is constraint
    assert _unconstrained(read) is leaf
    assert _unconstrained(store["p"]) is leaf
    check = cast(Callable[[torch.Tensor], torch.Tensor], constraint.check)
    assert bool(check(store["p"].detach()).all())


def test_real_param_read_is_the_leaf_itself_with_a_self_weakref() -> None:
    store = ParamStoreDict()
    init = torch.tensor([1.0, 2.0])
    value = store.setdefault("loc", init)
    assert value is init  # identity inverse keeps the caller's contiguous leaf, as Pyro
    assert init.requires_grad
    assert store["loc"] is value and _unconstrained(value) is value


def test_constrained_read_is_a_new_tensor_each_time_with_the_same_leaf() -> None:
    store = ParamStoreDict()
    store.setdefault("scale", torch.ones(2), constraints.positive)
    first, second = store["scale"], store["scale"]
    assert first is not second
    assert first.grad_fn is not None
    assert _unconstrained(first) is _unconstrained(second) is store._params["scale"]


def test_gradient_flows_from_constrained_value_to_leaf() -> None:
    store = ParamStoreDict()
    store.setdefault("scale", torch.tensor([2.0]), constraints.positive)
    leaf = store._params["scale"]
    (grad,) = torch.autograd.grad(store["scale"].sum(), [leaf])
    assert torch.allclose(grad, torch.tensor([2.0]))  # d exp(u)/du = exp(u) = 2


def test_non_contiguous_init_is_stored_contiguous() -> None:
    store = ParamStoreDict()
    init = torch.arange(6.0).reshape(2, 3).t()
    store["w"] = init
    assert store._params["w"].is_contiguous()
    assert torch.equal(store["w"].detach(), init)


def test_non_leaf_init_is_detached_so_the_store_holds_a_leaf() -> None:
    # Deviation: Pyro would store the non-leaf itself (and its graph).
    store = ParamStoreDict()
    base = torch.ones(2, requires_grad=True)
    store["x"] = base * 3
    leaf = store._params["x"]
    assert leaf.is_leaf and leaf.requires_grad and leaf.grad_fn is None
    assert torch.equal(leaf.detach(), torch.full((2,), 3.0))


def test_setdefault_ignores_init_and_constraint_when_name_exists() -> None:
    store = ParamStoreDict()
    store.setdefault("s", torch.tensor([1.0, 2.0]), constraints.positive)
    again = store.setdefault("s", torch.tensor([9.0]), constraints.real)
    assert torch.allclose(again, torch.tensor([1.0, 2.0]))
    assert store._constraints["s"] is constraints.positive


def test_lazy_init_is_called_exactly_once() -> None:
    store = ParamStoreDict()
    calls: list[int] = []

    def init() -> torch.Tensor:
        calls.append(1)
        return torch.tensor([4.0])

    for _ in range(3):
        value = store.setdefault("lazy", init, constraints.positive)
        assert torch.allclose(value, torch.tensor([4.0]))
    assert store.get_param("lazy", init) is not None
    assert len(calls) == 1


def test_setitem_keeps_existing_constraint_and_defaults_new_names_to_real() -> None:
    store = ParamStoreDict()
    store.setdefault("s", torch.tensor([1.0]), constraints.positive)
    old_leaf = store._params["s"]
    store["s"] = torch.tensor([5.0])
    assert store._constraints["s"] is constraints.positive
    assert torch.allclose(store._params["s"].detach(), torch.tensor([5.0]).log())
    assert store._params["s"] is not old_leaf
    store["new"] = torch.tensor([-1.0])
    assert store._constraints["new"] is constraints.real


def test_get_param_reads_existing_and_creates_missing() -> None:
    store = ParamStoreDict()
    created = store.get_param("a", torch.tensor([2.0]), constraints.positive, event_dim=0)
    assert torch.allclose(created, torch.tensor([2.0]))
    read = store.get_param("a")
    assert torch.allclose(read, torch.tensor([2.0]))
    assert _unconstrained(read) is store._params["a"]


# -- dict interface --------------------------------------------------------------------------


def test_dict_interface_keys_values_items_len_contains_iter_bool_del_clear() -> None:
    store = ParamStoreDict()
    assert not store and len(store) == 0
    store.setdefault("b", torch.tensor([1.0]))
    store.setdefault("a", torch.tensor([2.0]), constraints.positive)
    assert store and len(store) == 2
    assert "a" in store and "z" not in store
    assert list(store) == list(store.keys()) == ["b", "a"]
    assert [name for name, _ in store.items()] == ["b", "a"]
    values = list(store.values())
    assert torch.allclose(values[1], torch.tensor([2.0]))
    assert [name for name, _ in store.named_parameters()] == ["b", "a"]
    assert dict(store.named_parameters())["a"] is store._params["a"]
    del store["b"]
    assert list(store) == ["a"] and "b" not in store._constraints
    store.clear()
    assert len(store) == 0 and not store._param_to_name and not store._constraints


def test_keys_are_a_snapshot_safe_to_mutate_during_iteration() -> None:
    store = ParamStoreDict()
    for name in "abc":
        store[name] = torch.zeros(1)
    for name in store.keys():
        del store[name]
    assert len(store) == 0


def test_match_uses_re_match_anchored_at_start() -> None:
    store = ParamStoreDict()
    for name in ["loc_a", "loc_b", "scale_loc"]:
        store[name] = torch.zeros(1)
    assert sorted(store.match("loc")) == ["loc_a", "loc_b"]
    assert sorted(store.match(".*loc")) == ["loc_a", "loc_b", "scale_loc"]
    assert store.match("nothing") == {}


def test_param_name_maps_current_leaves_and_forgets_replaced_ones() -> None:
    store = ParamStoreDict()
    store.setdefault("s", torch.tensor([1.0]), constraints.positive)
    old_leaf = store._params["s"]
    assert store.param_name(old_leaf) == "s"
    store["s"] = torch.tensor([3.0])
    assert store.param_name(store._params["s"]) == "s"
    assert store.param_name(old_leaf) is None  # deviation: Pyro keeps the stale entry
    assert store.param_name(torch.zeros(1)) is None
    del store["s"]
    assert store._param_to_name == {}


def test_leaf_shared_by_two_names_keeps_the_other_reverse_entry() -> None:
    store = ParamStoreDict()
    shared = torch.zeros(2)
    store["a"] = shared
    store["b"] = shared
    assert store.param_name(shared) == "b"
    store["a"] = torch.ones(2)
    del store["a"]
    assert store.param_name(shared) == "b"
    del store["b"]
    assert store._param_to_name == {}


def test_deprecated_methods_warn_and_still_work() -> None:
    store = ParamStoreDict()
    store.setdefault("s", torch.tensor([1.0]), constraints.positive)
    with pytest.warns(DeprecationWarning, match="get_all_param_names"):
        assert list(store.get_all_param_names()) == ["s"]
    with pytest.warns(DeprecationWarning, match="replace_param"):
        store.replace_param("s", torch.tensor([2.0]), store["s"])
    assert torch.allclose(store["s"], torch.tensor([2.0]))
    other = ParamStoreDict()
    other.setdefault("s", torch.tensor([2.0]), constraints.positive)
    with pytest.warns(DeprecationWarning), pytest.raises(AssertionError, match="'s'"):
        store.replace_param("s", torch.tensor([3.0]), other["s"])
    with pytest.warns(DeprecationWarning), pytest.raises(AttributeError):
        store.replace_param("s", torch.tensor([3.0]), torch.tensor([2.0]))  # no .unconstrained, as Pyro


# -- errors ----------------------------------------------------------------------------------


def test_missing_param_raises_key_error_with_the_name() -> None:
    store = ParamStoreDict()
    with pytest.raises(KeyError) as info:
        store.get_param("missing")
    assert info.value.args == ("missing",)
    with pytest.raises(KeyError, match="missing"):
        store["missing"]
    with pytest.raises(KeyError, match="missing"):
        del store["missing"]


@pytest.mark.parametrize(
    ("init", "constraint", "error"),
    [
        (1.0, constraints.real, AttributeError),
        ([1.0, 2.0], constraints.real, AttributeError),
        (1.0, constraints.positive, AttributeError),
        ([1.0], constraints.positive, TypeError),
        (torch.tensor([1, 2]), constraints.real, RuntimeError),
        (torch.tensor([1.0]), constraints.lower_cholesky, RuntimeError),
        (torch.tensor([1.0]), constraints.boolean, NotImplementedError),
    ],
)
def test_bad_init_raises_pyro_error_type_naming_the_param_and_leaves_no_trace(
    init: Any, constraint: Constraint, error: type[Exception]
) -> None:
    store = ParamStoreDict()
    with pytest.raises(error, match="param 'bad'") as info:
        store.setdefault("bad", init, constraint)
    assert type(info.value) is error
    assert isinstance(info.value.__cause__, error)  # the original torch/Python error is chained
    assert "bad" not in store and "bad" not in store._constraints


@pytest.mark.parametrize(
    ("value", "error"),
    [(1.0, AttributeError), (None, AttributeError), (torch.tensor([1, 2]), RuntimeError)],
)
def test_bad_setitem_value_raises_pyro_error_type_naming_the_param(value: Any, error: type[Exception]) -> None:
    store = ParamStoreDict()
    with pytest.raises(error, match="param 'bad'"):
        store["bad"] = value
    assert len(store) == 0 and not store._constraints
    store.setdefault("kept", torch.tensor([1.0]))
    with pytest.raises(error, match="param 'kept'"):
        store["kept"] = value
    assert torch.allclose(store["kept"], torch.tensor([1.0]))


def test_non_tensor_error_message_says_a_tensor_was_expected() -> None:
    store = ParamStoreDict()
    not_a_tensor: Any = 1.0
    with pytest.raises(AttributeError, match=r"param 'x': expected a torch.Tensor value, got float"):
        store.setdefault("x", not_a_tensor)


def test_error_raised_by_lazy_init_propagates_unchanged() -> None:
    store = ParamStoreDict()

    def init() -> torch.Tensor:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="^boom$"):
        store.setdefault("x", init)
    assert "x" not in store


def test_set_state_rejects_malformed_state_with_assertion_error() -> None:
    store = ParamStoreDict()
    not_a_dict: Any = []
    with pytest.raises(AssertionError, match="malformed ParamStore state"):
        store.set_state(not_a_dict)
    missing_constraints: Any = {"params": {}}
    with pytest.raises(AssertionError, match="malformed ParamStore keys"):
        store.set_state(missing_constraints)


def test_reads_see_direct_writes_to_the_internal_maps_as_pyro_module_code_does() -> None:
    # Pyro's PyroModule writes _params/_constraints/_param_to_name directly; cached reads must notice.
    store = ParamStoreDict()
    store.setdefault("w", torch.tensor([1.0]), constraints.positive)
    assert torch.allclose(store["w"], torch.tensor([1.0]))
    new_leaf = torch.tensor([0.5], requires_grad=True)
    store._params["w"] = new_leaf
    assert torch.allclose(store["w"], torch.tensor([0.5]).exp())
    store._constraints["w"] = constraints.real
    assert store["w"] is new_leaf


def test_pyros_param_store_module_names_are_at_pyros_path() -> None:
    import pyro.params.param_store as pyro_param_store

    import ember.params.param_store as ember_param_store

    names = ["ParamStoreDict", "StateDict", "_MODULE_NAMESPACE_DIVIDER", "module_from_param_with_module_name",
             "normalize_param_name", "param_with_module_name", "user_param_name"]  # fmt: skip
    assert [name for name in names if not hasattr(pyro_param_store, name)] == []
    assert [name for name in names if not hasattr(ember_param_store, name)] == []
    assert ember_param_store.StateDict.__annotations__.keys() == {"params", "constraints"}
    assert ember_param_store._MODULE_NAMESPACE_DIVIDER == pyro_param_store._MODULE_NAMESPACE_DIVIDER

