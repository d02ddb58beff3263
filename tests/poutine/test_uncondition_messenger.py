from __future__ import annotations

import torch

import ember
import ember.distributions as dist
from ember import poutine


def test_uncondition_samples_observed_sites() -> None:
    def m() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    tr = poutine.trace(poutine.uncondition(m)).get_trace()
    node = tr.nodes["x"]
    assert not node["is_observed"]
    assert node["infer"] == {"was_observed": True, "obs": torch.tensor(0.0)}
    assert node["value"] != 0.0
