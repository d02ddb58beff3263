from __future__ import annotations

import torch

from ember.poutine.message import CondIndepStackFrame, new_message


def test_new_message_sets_every_required_key() -> None:
    msg = new_message("sample", "x", print, (1,), {"k": 2}, value=3, is_observed=True)
    assert set(msg) == {
        "type", "name", "fn", "is_observed", "args", "kwargs", "value", "scale", "mask",
        "cond_indep_stack", "done", "stop", "continuation", "infer",
    }
    assert msg["args"] == (1,) and msg["kwargs"] == {"k": 2} and msg["value"] == 3 and msg["is_observed"]
    assert msg["scale"] == 1.0 and msg["mask"] is None and msg["cond_indep_stack"] == ()
    assert not msg["done"] and not msg["stop"] and msg["continuation"] is None and msg["infer"] == {}


def test_new_message_does_not_share_default_containers() -> None:
    a, b = new_message("t", "a", print), new_message("t", "b", print)
    a["kwargs"]["x"] = 1
    a["infer"]["is_auxiliary"] = True
    assert b["kwargs"] == {} and b["infer"] == {}


def test_frame_equality_ignores_full_size_and_compares_tensor_sizes() -> None:
    f = CondIndepStackFrame("data", -1, 10, 0, full_size=100)
    g = CondIndepStackFrame("data", -1, 10, 0)
    assert f == g and hash(f) == hash(g)
    h = CondIndepStackFrame("data", -1, torch.tensor(10), 0)  # type: ignore[arg-type]  # traced sizes are tensors
    assert f == h and hash(f) == hash(h)
    assert f != CondIndepStackFrame("data", -1, 10, 1)
    assert f != ("data", -1, 10, 0, 100)
    assert str(f) == "data" and f.vectorized and not CondIndepStackFrame("s", None, 3, 1).vectorized
