"""Relaxed one-hot categorical latent variables through the Gumbel-softmax trick."""

from __future__ import annotations

import torch

import ember.distributions as dist
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.primitives import sample

__all__ = ["GumbelSoftmaxReparam"]


class GumbelSoftmaxReparam(Reparam):
    """Draw a ``RelaxedOneHotCategorical(temperature, logits)`` site from uniform noise.

    The auxiliary site ``"<site>_uniform" ~ Uniform(0, 1)`` (one per category) gives Gumbel
    noise ``g = -log(-log u)``, and the site becomes the deterministic
    ``softmax((logits + g) / temperature)``. A known value (an initial value) is mapped back
    to its noise. Latent sites only.

    :raises AssertionError: on a site whose distribution is not a
        ``RelaxedOneHotCategorical`` (Pyro's type), naming the site.
    :raises NotImplementedError: on an observed site.

    >>> import ember
    >>> from ember import poutine
    >>> model = lambda: ember.sample("x", dist.RelaxedOneHotCategorical(torch.tensor(0.5), logits=torch.zeros(3)))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": GumbelSoftmaxReparam()})).get_trace()
    >>> list(tr.nodes)[1:3], round(float(tr.nodes["x"]["value"].sum()), 4)
    (['x_uniform', 'x'], 1.0)
    """

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        name = msg["name"]
        value = msg["value"]
        is_observed = bool(msg["is_observed"])
        fn, event_dim = self._unwrap(msg["fn"])
        if not isinstance(fn, torch.distributions.RelaxedOneHotCategorical):
            raise AssertionError(
                f"GumbelSoftmaxReparam at site {name!r} expects a RelaxedOneHotCategorical distribution, "
                f"got {type(fn).__name__}"
            )
        if is_observed:
            raise NotImplementedError(f"SoftmaxReparam does not support observe statements (at sample site {name!r})")
        logits: torch.Tensor = fn.logits
        temperature: torch.Tensor = fn.temperature
        uniform = None
        if value is not None:
            # The noise that yields ``value`` (the softmax of ``log value``). Pyro uses ``value``
            # for ``log value`` here, which maps an initial value to a different point.
            uniform = (logits - value.log() * temperature).exp().neg().exp()
        noise_fn = dist.Uniform(torch.zeros_like(logits), torch.ones_like(logits))
        uniform = sample(f"{name}_uniform", self._wrap(noise_fn, event_dim), obs=uniform, infer={"is_observed": is_observed})
        if value is None:
            value = ((logits - uniform.log().neg().log()) / temperature).softmax(dim=-1)
        return {"fn": dist.Delta(value, event_dim=event_dim).mask(False), "value": value, "is_observed": True}
