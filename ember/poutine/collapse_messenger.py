"""``collapse``: integrate latent sites out in closed form, by conjugacy.

Changes step 1 of every ``sample`` message inside it (plate subsample sites excepted): the
site is recorded, marked ``done`` and hidden (``stop``) from the handlers outside. A latent
site is not drawn: its value is a stand-in, a :class:`CollapsedValue` (a tensor holding the
prior mean that remembers which site it stands for). An observed site whose distribution
takes a stand-in as its parameter must form a known conjugate pair with that latent's prior;
its sufficient statistics update the latent's posterior. At each ``barrier`` and on exit,
the recorded sites are replaced by one ``factor``, named after the first latent site, that
holds their marginal log density; ``barrier`` also draws the latents from their posterior
and returns the draws in place of the stand-ins it is given.

Known pairs (prior, likelihood of the observed child): Normal-Normal (child ``loc``),
Beta-Bernoulli and Beta-Binomial (``probs``), Gamma-Poisson (``rate``),
Dirichlet-Categorical and Dirichlet-Multinomial (``probs``). Any other use of a stand-in
in a distribution raises :class:`NotImplementedError` naming the site.
"""

from __future__ import annotations

from typing import Any, Callable, ParamSpec, TypeVar

import torch
from torch.distributions import Independent
from typing_extensions import Self

from ember.distributions.unit import Unit
from ember.distributions.util import broadcast_shape, is_identically_one, scale_and_mask
from ember.poutine.message import CondIndepStackFrame, Message, new_message
from ember.poutine._collapsed_value import CollapsedValue, _stand_ins
from ember.poutine._conjugate import _CHILDREN, _Latent, _statistics, _sum_to_shape
from ember.poutine.broadcast_messenger import BroadcastMessenger
from ember.poutine.trace_messenger import TraceHandler, TraceMessenger
from ember.poutine.runtime import apply_stack, get_plates, get_stack
from ember.poutine.util import site_is_subsample
from ember._util import warn_at_caller

__all__ = ["CollapseHandler", "CollapseMessenger", "CollapsedValue"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_PAIRS = "Normal-Normal, Beta-Bernoulli, Beta-Binomial, Gamma-Poisson, Dirichlet-Categorical, Dirichlet-Multinomial"


class CollapseHandler(TraceHandler[_P, _T]):
    """A function run under a :class:`CollapseMessenger`; binds like a function as a method."""


class CollapseMessenger(TraceMessenger):
    """Marginalize the latent sites inside it in closed form (EXPERIMENTAL).

    Handlers outside see only one observed ``factor`` site per ``barrier`` (and one on
    exit) instead of the collapsed sites. Latent values inside are stand-ins: pass them to
    distributions of conjugate likelihoods, or through :func:`ember.barrier` to get
    posterior draws; plates entered outside the context keep their dims in the factor.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> def model(data):
    ...     with CollapseMessenger():
    ...         p = ember.sample("p", dist.Beta(2.0, 2.0))
    ...         with ember.plate("data", len(data)):
    ...             ember.sample("x", dist.Bernoulli(p), obs=data)
    >>> tr = poutine.trace(model).get_trace(torch.tensor([1.0, 0.0, 1.0]))
    >>> list(tr.nodes), round(tr.log_prob_sum().exp().item(), 4)  # B(4, 3) / B(2, 2)
    (['_INPUT', 'data', 'p', '_RETURN'], 0.1)
    """

    def __init__(self) -> None:
        super().__init__()
        self._block = False
        self._latents: dict[str, _Latent] = {}
        self._terms: list[torch.Tensor] = []
        self._pending: list[str] = []
        self._drawn: dict[str, torch.Tensor] = {}
        self._outer_frames: tuple[CondIndepStackFrame, ...] = ()
        self._preserved_dims: frozenset[int] = frozenset()

    def __call__(self, fn: Callable[_P, _T]) -> CollapseHandler[_P, _T]:
        return CollapseHandler(self, fn)

    def __enter__(self) -> Self:
        self._outer_frames = tuple(frame for frame in get_plates() if frame.dim is not None)
        self._preserved_dims = frozenset(frame.dim for frame in self._outer_frames if frame.dim is not None)
        self._clear()
        self._drawn = {}
        return super().__enter__()

    def __exit__(self, *args: Any) -> None:
        super().__exit__(*args)
        if args[0] is None and self._pending:
            self._emit_factor()
        self._clear()
        self._drawn = {}

    def _reset(self) -> None:
        super()._reset()
        self._latents, self._terms, self._pending = {}, [], []

    def _clear(self) -> None:
        self._latents, self._terms, self._pending = {}, [], []
        self.trace.nodes.clear()

    def _pyro_sample(self, msg: Message) -> None:
        if self._block or site_is_subsample(msg):
            return
        name = msg["name"] or ""
        if self._outer_frames:
            # The site is hidden from the plates outside, so broadcast it to them here.
            broadcast = msg.copy()
            broadcast["cond_indep_stack"] = msg["cond_indep_stack"] + self._outer_frames
            BroadcastMessenger._pyro_sample(broadcast)
            msg["fn"] = broadcast["fn"]
        if msg["infer"].get("_deterministic"):
            pass  # recorded and hidden; it adds nothing to the density
        elif not msg["is_observed"] and msg["value"] is None:
            if _stand_ins(msg["fn"]):
                raise NotImplementedError(
                    f"collapse: the prior of latent site {name!r} depends on another collapsed "
                    "site; only one level of conjugacy is supported"
                )
            latent = _Latent(name, msg["fn"])
            self._latents[name] = latent
            msg["value"] = latent.stand_in
        else:
            self._observe(name, msg)
        self._pending.append(name)
        msg["done"] = True
        msg["stop"] = True

    def _pyro_post_sample(self, msg: Message) -> None:
        if self._block or site_is_subsample(msg):
            return
        super()._pyro_post_sample(msg)

    def _pyro_post_param(self, msg: Message) -> None:
        pass  # params pass through; only sample sites are collapsed

    def _observe(self, name: str, msg: Message) -> None:
        fn: Any = msg["fn"]
        value = msg["value"]
        stand_ins = _stand_ins(fn)
        if isinstance(value, CollapsedValue):
            raise NotImplementedError(f"collapse: site {name!r} observes a collapsed value")
        if not stand_ins:
            self._terms.append(scale_and_mask(fn.log_prob(value), msg["scale"], msg["mask"]))
            return
        sites = frozenset().union(*(v._collapsed_sites for v in stand_ins))
        stale = sorted(sites & self._drawn.keys())
        if stale:
            raise NotImplementedError(
                f"collapse: site {name!r} uses the stand-in of {stale[0]!r}, which a barrier already "
                "replaced by a draw; use the value ember.barrier returned"
            )
        child = fn
        while isinstance(child, Independent):
            child = child.base_dist
        latent = self._latents.get(next(iter(sites))) if len(sites) == 1 else None
        family = None if latent is None else latent.family
        rule = next((r for (f, c), r in _CHILDREN.items() if f == family and isinstance(child, c)), None)
        parameter = None if rule is None else getattr(child, rule[0], None)
        if (
            latent is None
            or rule is None
            or not isinstance(parameter, CollapsedValue)
            or parameter._collapsed_kind != "value"
            or any(isinstance(getattr(child, other), CollapsedValue) for other in rule[1])
        ):
            prior = "this" if latent is None else f"a {type(latent.base_prior).__name__}"
            raise NotImplementedError(
                f"collapse: cannot integrate out latent site(s) {sorted(sites)} through observed site "
                f"{name!r}: no conjugate rule for {prior} prior and this {type(child).__name__} "
                f"likelihood; known pairs (prior-likelihood): {_PAIRS}"
            )
        if not is_identically_one(msg["scale"]):
            raise NotImplementedError(f"collapse: observed site {name!r} is scaled, which collapse does not support")
        # Each element of the (broadcast) batch is one observation.
        value = value.expand(broadcast_shape(value.shape, child.batch_shape + child.event_shape))
        stats, base = _statistics(child, value)
        mask = msg["mask"]
        if mask is not None and mask is not True:
            keep = torch.as_tensor(mask, device=base.device).expand(base.shape)
            base = torch.where(keep, base, 0.0)
            for key, stat in stats.items():
                stats[key] = torch.where(keep.reshape(keep.shape + (1,) * (stat.dim() - keep.dim())), stat, 0.0)
        for key, stat in stats.items():
            latent.stats[key] = latent.stats[key] + _sum_to_shape(stat, latent.shape)
        latent.base = latent.base + _sum_to_shape(base, latent.elem_shape)

    def _reduce(self, log_density: torch.Tensor) -> torch.Tensor:
        """Sum ``log_density`` over every dim but those of plates entered outside the context."""
        keep = self._preserved_dims
        summed = [d for d in range(-log_density.dim(), 0) if d not in keep]
        if summed:
            log_density = log_density.sum(summed, keepdim=True)
        ndim = max((-d for d in keep), default=0)
        while log_density.dim() > ndim:
            log_density = log_density.squeeze(0)
        return log_density

    def _emit_factor(self) -> None:
        """Send one factor site holding the marginal log density of the pending sites."""
        latents = [self._latents[n] for n in self._pending if n in self._latents]
        name = latents[0].name if latents else self._pending[0]
        log_factor: torch.Tensor | float = 0.0
        for term in [latent.log_marginal() for latent in latents] + self._terms:
            log_factor = log_factor + self._reduce(term)
        if not get_stack():
            warn_at_caller("trying to observe a value outside of inference at " + name, RuntimeWarning)
            return
        unit = Unit(log_factor)
        apply_stack(new_message("sample", name, unit, value=unit.sample(), is_observed=True, infer={"is_auxiliary": True}))

    def _pyro_barrier(self, msg: Message) -> None:
        if self._block:
            return
        if self._pending:
            self._block = True
            try:
                self._emit_factor()
            finally:
                self._block = False
            self._drawn.update({latent.name: latent.draw() for latent in self._latents.values()})
            self._clear()
        assert len(msg["args"]) == 1, "barrier takes one argument"
        msg["value"] = self._substitute(msg["args"][0])

    def _substitute(self, value: Any) -> Any:
        if isinstance(value, CollapsedValue):
            (site,) = value._collapsed_sites if value._collapsed_kind == "value" else (None,)
            if site is None or site not in self._drawn:
                raise NotImplementedError(
                    f"collapse: barrier cannot make a value computed from collapsed site(s) "
                    f"{sorted(value._collapsed_sites)} concrete; pass the sites' values themselves"
                )
            draw = self._drawn[site]
            return draw if draw.shape == value.shape else draw.expand(value.shape)
        if isinstance(value, (tuple, list)):
            return type(value)(self._substitute(v) for v in value)
        if isinstance(value, dict):
            return {k: self._substitute(v) for k, v in value.items()}
        return value
