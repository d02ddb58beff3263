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

import functools
import math
import warnings
from typing import Any, Callable, ParamSpec, TypeVar

import torch
from torch.distributions import Bernoulli, Beta, Binomial, Categorical, Dirichlet, Gamma, Independent
from torch.distributions import Multinomial, Normal, Poisson
from typing_extensions import Self

from ember.distributions.unit import Unit
from ember.distributions.util import is_identically_one, scale_and_mask
from ember.poutine.message import Message, new_message
from ember.poutine.messengers.plate import IndepMessenger
from ember.poutine.messengers.trace import TraceHandler, TraceMessenger
from ember.poutine.runtime import apply_stack, get_stack
from ember.poutine.util import site_is_subsample

__all__ = ["CollapseMessenger", "CollapsedValue"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_PAIRS = "Normal-Normal, Beta-Bernoulli, Beta-Binomial, Gamma-Poisson, Dirichlet-Categorical, Dirichlet-Multinomial"

# Operations that keep a stand-in's elements right-aligned (broadcast or copy them), or
# whose result does not depend on the stand-in's values at all.
_ALIGNED = {
    torch.Tensor.expand, torch.Tensor.expand_as, torch.broadcast_to, torch.Tensor.broadcast_to,
    torch.Tensor.contiguous, torch.Tensor.clone, torch.clone, torch.Tensor.detach, torch.detach,
    torch.Tensor.to, torch.Tensor.type, torch.Tensor.type_as, torch.Tensor.float, torch.Tensor.double,
}  # fmt: skip
_VALUE_FREE = {
    torch.Tensor.new_zeros, torch.Tensor.new_ones, torch.Tensor.new_full, torch.Tensor.new_empty,
    torch.Tensor.new_tensor, torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like,
}  # fmt: skip
_DIVISIONS = {torch.Tensor.div, torch.div, torch.Tensor.__truediv__, torch.true_divide}


class CollapsedValue(torch.Tensor):
    """The stand-in value of a collapsed latent site (or a tensor computed from one).

    Every torch operation on it works on the numbers it holds (the prior mean) and marks its
    result as coming from the same sites; :class:`CollapseMessenger` reads the marks.
    """

    _collapsed_sites: frozenset[str]
    # "value": the latent itself, possibly broadcast; "sum": its sum over the last dim
    # (how torch normalizes probabilities); "derived": anything else.
    _collapsed_kind: str

    @staticmethod
    def _mark(tensor: torch.Tensor, sites: frozenset[str], kind: str) -> CollapsedValue:
        with torch._C.DisableTorchFunctionSubclass():
            marked = tensor.as_subclass(CollapsedValue)
        marked._collapsed_sites = sites
        marked._collapsed_kind = kind
        return marked

    @classmethod
    def __torch_function__(
        cls, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = {} if kwargs is None else kwargs
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*args, **kwargs)
        first = args[0] if args else None
        if func is torch.broadcast_tensors or func is torch.functional.broadcast_tensors:
            return tuple(_like(r, a) for r, a in zip(result, args))
        if func in _VALUE_FREE:
            return result
        if func in _ALIGNED:
            return _like(result, first)
        if isinstance(first, CollapsedValue) and first._collapsed_kind == "value":
            if func in (torch.Tensor.sum, torch.sum) and _sums_last_dim_keepdim(first, args, kwargs):
                return cls._mark(result, first._collapsed_sites, "sum")
            second = args[1] if len(args) > 1 else None
            if (
                func in _DIVISIONS
                and isinstance(second, CollapsedValue)
                and second._collapsed_kind == "sum"
                and second._collapsed_sites == first._collapsed_sites
            ):
                return cls._mark(result, first._collapsed_sites, "value")
        sites = frozenset().union(*(v._collapsed_sites for v in _flatten((args, kwargs))))
        return _mark_all(result, sites)


def _flatten(obj: Any) -> list[CollapsedValue]:
    if isinstance(obj, CollapsedValue):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [v for item in obj for v in _flatten(item)]
    if isinstance(obj, dict):
        return [v for item in obj.values() for v in _flatten(item)]
    return []


def _like(result: Any, source: Any) -> Any:
    """``result`` marked as ``source`` is, when ``source`` is a stand-in."""
    if isinstance(source, CollapsedValue) and isinstance(result, torch.Tensor) and result is not source:
        return CollapsedValue._mark(result, source._collapsed_sites, source._collapsed_kind)
    return result


def _mark_all(result: Any, sites: frozenset[str]) -> Any:
    if isinstance(result, torch.Tensor):
        return CollapsedValue._mark(result, sites, "derived")
    if isinstance(result, (tuple, list)):
        return type(result)(_mark_all(r, sites) for r in result)
    return result


def _sums_last_dim_keepdim(tensor: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if isinstance(dim, (tuple, list)) and len(dim) == 1:
        dim = dim[0]
    return bool(keepdim) and dim in (-1, tensor.dim() - 1)


def _stand_ins(fn: Any) -> list[CollapsedValue]:
    """The stand-ins among the attributes of a distribution and its sub-distributions."""
    found: list[CollapsedValue] = []
    for value in vars(fn).values():
        if isinstance(value, CollapsedValue):
            found.append(value)
        elif isinstance(value, torch.distributions.Distribution):
            found.extend(_stand_ins(value))
    return found


def _sum_to_shape(tensor: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``tensor`` over the dims that broadcasting ``shape`` to it added or expanded."""
    extra = tensor.dim() - len(shape)
    if extra > 0:
        tensor = tensor.sum(list(range(extra)))
    expanded = [i for i, size in enumerate(shape) if size == 1 and tensor.shape[i] != 1]
    if expanded:
        tensor = tensor.sum(expanded, keepdim=True)
    return tensor.expand(shape)


# Conjugate families. Each latent keeps natural parameters; an observation adds its
# sufficient statistics (same keys) plus a base-measure term, and the marginal density is
# log_normalizer(posterior) - log_normalizer(prior) + base.


def _natural_params(prior: Any, shape: torch.Size) -> tuple[str | None, dict[str, torch.Tensor]]:
    if isinstance(prior, Normal):
        precision = prior.scale.pow(-2)
        return "Normal", {"precision": precision.expand(shape), "eta": (prior.loc * precision).expand(shape)}
    if isinstance(prior, Beta):
        return "Beta", {"a": prior.concentration1.expand(shape), "b": prior.concentration0.expand(shape)}
    if isinstance(prior, Gamma):
        return "Gamma", {"a": prior.concentration.expand(shape), "b": prior.rate.expand(shape)}
    if isinstance(prior, Dirichlet):
        return "Dirichlet", {"a": prior.concentration.expand(shape)}
    return None, {}


def _log_normalizer(family: str, p: dict[str, torch.Tensor]) -> torch.Tensor:
    if family == "Normal":
        return 0.5 * (math.log(2 * math.pi) - p["precision"].log()) + p["eta"].pow(2) / (2 * p["precision"])
    if family == "Beta":
        return torch.lgamma(p["a"]) + torch.lgamma(p["b"]) - torch.lgamma(p["a"] + p["b"])
    if family == "Gamma":
        return torch.lgamma(p["a"]) - p["a"] * p["b"].log()
    return torch.lgamma(p["a"]).sum(-1) - torch.lgamma(p["a"].sum(-1))


def _posterior(family: str, p: dict[str, torch.Tensor]) -> torch.distributions.Distribution:
    if family == "Normal":
        return Normal(p["eta"] / p["precision"], p["precision"].rsqrt())
    if family == "Beta":
        return Beta(p["a"], p["b"])
    if family == "Gamma":
        return Gamma(p["a"], p["b"])
    return Dirichlet(p["a"])


# (prior family, likelihood class) -> (the likelihood parameter that must be the latent,
# the likelihood parameters that must not depend on it). A distribution built from the
# latent as that parameter may cache other stand-ins computed from it (``logits`` from
# ``probs``); those are harmless, so only these parameters are checked.
_CHILDREN: dict[tuple[str, type], tuple[str, tuple[str, ...]]] = {
    ("Normal", Normal): ("loc", ("scale",)),
    ("Beta", Bernoulli): ("probs", ()),
    ("Beta", Binomial): ("probs", ("total_count",)),
    ("Gamma", Poisson): ("rate", ()),
    ("Dirichlet", Categorical): ("probs", ()),
    ("Dirichlet", Multinomial): ("probs", ()),
}


def _statistics(child: Any, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-observation sufficient statistics and base-measure log density of ``child`` at ``x``."""
    if isinstance(child, Normal):
        precision = child.scale.pow(-2).expand_as(x)
        base = -0.5 * (x.pow(2) * precision + math.log(2 * math.pi) - precision.log())
        return {"precision": precision, "eta": x * precision}, base
    if isinstance(child, Bernoulli):
        return {"a": x, "b": 1 - x}, torch.zeros_like(x)
    if isinstance(child, Binomial):
        n = child.total_count.expand_as(x)
        base = torch.lgamma(n + 1) - torch.lgamma(x + 1) - torch.lgamma(n - x + 1)
        return {"a": x, "b": n - x}, base
    if isinstance(child, Poisson):
        return {"a": x, "b": torch.ones_like(x)}, -torch.lgamma(x + 1)
    num_categories = child.probs.size(-1)
    if isinstance(child, Categorical):
        counts = torch.nn.functional.one_hot(x.long(), num_categories).to(child.probs.dtype)
        return {"a": counts}, torch.zeros(x.shape, dtype=counts.dtype, device=x.device)
    base = torch.lgamma(x.sum(-1) + 1) - torch.lgamma(x + 1).sum(-1)
    return {"a": x}, base


class _Latent:
    """A collapsed latent site: its prior's natural parameters and the statistics seen so far."""

    def __init__(self, name: str, prior: Any) -> None:
        self.name = name
        self.prior = prior
        try:
            mean = prior.mean.detach()
        except NotImplementedError:
            mean = prior.sample()
        self.shape: torch.Size = mean.shape
        self.stand_in = CollapsedValue._mark(mean.clone(), frozenset([name]), "value")
        base_prior = prior
        while isinstance(base_prior, Independent):
            base_prior = base_prior.base_dist
        self.base_prior = base_prior
        self.family, self.prior_params = _natural_params(base_prior, self.shape)
        self.elem_shape = self.shape[:-1] if self.family == "Dirichlet" else self.shape
        self.stats = {key: torch.zeros_like(value) for key, value in self.prior_params.items()}
        self.base: torch.Tensor = mean.new_zeros(self.elem_shape)

    def posterior_params(self) -> dict[str, torch.Tensor]:
        return {key: value + self.stats[key] for key, value in self.prior_params.items()}

    def log_marginal(self) -> torch.Tensor:
        if self.family is None:
            return self.base  # no observation depends on it: it integrates to one
        prior = _log_normalizer(self.family, self.prior_params)
        return _log_normalizer(self.family, self.posterior_params()) - prior + self.base

    def draw(self) -> torch.Tensor:
        if self.family is None:
            draw: torch.Tensor = self.prior.sample()
            return draw
        return _posterior(self.family, self.posterior_params()).rsample()


class _CollapseHandler(TraceHandler[_P, _T]):
    """A function run under a :class:`CollapseMessenger`; binds like a function as a method."""

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        call: Callable[..., _T] = self
        return functools.partial(call, instance)


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
        self._preserved_dims: frozenset[int] = frozenset()

    def __call__(self, fn: Callable[_P, _T]) -> TraceHandler[_P, _T]:
        return _CollapseHandler(self, fn)

    def __enter__(self) -> Self:
        self._preserved_dims = frozenset(
            frame.dim for frame in get_stack() if isinstance(frame, IndepMessenger) and frame.dim is not None
        )
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
        latent = self._latents[next(iter(sites))]
        rule = next((r for (f, c), r in _CHILDREN.items() if f == latent.family and isinstance(child, c)), None)
        parameter = None if rule is None else getattr(child, rule[0], None)
        if (
            rule is None
            or len(sites) != 1
            or not isinstance(parameter, CollapsedValue)
            or parameter._collapsed_kind != "value"
            or any(isinstance(getattr(child, other), CollapsedValue) for other in rule[1])
        ):
            raise NotImplementedError(
                f"collapse: cannot integrate out latent site(s) {sorted(sites)} through observed site "
                f"{name!r}: no conjugate rule for a {type(latent.base_prior).__name__} prior and this "
                f"{type(child).__name__} likelihood; known pairs (prior-likelihood): {_PAIRS}"
            )
        if not is_identically_one(msg["scale"]):
            raise NotImplementedError(f"collapse: observed site {name!r} is scaled, which collapse does not support")
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
        log_factor = torch.tensor(0.0)
        for term in [latent.log_marginal() for latent in latents] + self._terms:
            log_factor = log_factor + self._reduce(term)
        if not get_stack():
            warnings.warn("trying to observe a value outside of inference at " + name, RuntimeWarning)
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
