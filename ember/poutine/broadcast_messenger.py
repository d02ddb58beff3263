"""``broadcast``: expand each sample site's distribution to the enclosing plates' batch shape.

Changes step 1 (process) of sample messages that are not yet done: ``msg["fn"]`` becomes
``fn.expand(target)``, where ``target`` puts each vectorized plate's size at its dim and keeps
the distribution's own sizes elsewhere. :class:`~ember.poutine.plate_messenger.PlateMessenger`
applies the same rule to every message it sees.
"""

from __future__ import annotations

from ember.distributions.torch_distribution import TorchDistributionMixin
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger

__all__ = ["BroadcastMessenger"]


def _describe_plates(msg: Message) -> str:
    return ", ".join(
        f"{frame.name}(size={frame.size}, dim={frame.dim})"
        for frame in msg["cond_indep_stack"]
        if frame.dim is not None
    )


class BroadcastMessenger(Messenger):
    """Broadcast sample-site distributions to the shape of the enclosing plates.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.indep_messenger import IndepMessenger
    >>> with BroadcastMessenger(), IndepMessenger("data", 3, dim=-1):
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    >>> x.shape
    torch.Size([3])
    """

    @staticmethod
    def _pyro_sample(msg: Message, innermost_first: bool = False) -> None:
        """Expand ``msg["fn"]`` to the plates' sizes; raise naming the first mismatched plate.

        A plate broadcasting on behalf of the plates inside it checks them innermost first,
        the order in which Pyro's per-plate broadcasts would meet them.
        """
        fn = msg["fn"]
        if msg["done"] or msg["type"] != "sample" or not isinstance(fn, TorchDistributionMixin):
            return
        frames = [f for f in msg["cond_indep_stack"] if f.dim is not None and f.size != -1]
        if not frames:
            return
        actual = tuple(fn.batch_shape)
        ndim = max(len(actual), max(-f.dim for f in frames if f.dim is not None))
        target = [1] * (ndim - len(actual)) + list(actual)
        for frame in reversed(frames) if innermost_first else frames:
            assert frame.dim is not None and frame.dim < 0
            current = target[frame.dim]
            if current != 1 and current != frame.size:
                raise ValueError(
                    f"Shape mismatch inside plate('{frame.name}') at site {msg['name']} dim "
                    f"{frame.dim}, {frame.size} vs {current}: the distribution's batch_shape "
                    f"{actual} does not broadcast against the enclosing plates "
                    f"[{_describe_plates(msg)}]"
                )
            target[frame.dim] = frame.size
        if tuple(target) == actual:
            return
        new_fn = fn.expand(target)
        if new_fn.has_rsample != fn.has_rsample:
            new_fn.has_rsample_(fn.has_rsample)
        msg["fn"] = new_fn
