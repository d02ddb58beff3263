"""``uncondition``: turn observed sample sites into latent ones.

Changes step 1 of observed ``sample`` messages: they become unobserved and will be sampled;
the observation is kept in ``infer["obs"]`` with ``infer["was_observed"] = True``.
"""

from __future__ import annotations

from ember.poutine.message import Message
from ember.poutine.messenger import Messenger

__all__ = ["UnconditionMessenger"]


class UnconditionMessenger(Messenger):
    """Sample observed sites instead of observing them.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with UnconditionMessenger():
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(100.0))
    >>> bool(x != 100.0)
    True
    """

    def _pyro_sample(self, msg: Message) -> None:
        if msg["is_observed"]:
            msg["is_observed"] = False
            msg["infer"]["was_observed"] = True
            msg["infer"]["obs"] = msg["value"]
            msg["value"] = None
            msg["done"] = False
