"""Which sites of a model depend on which: provenance tracking over one run of the model.

:class:`TrackProvenance` tags each latent value (and each param) with its own name; every
torch op passes the tags on (:mod:`ember.ops.provenance`), so a site's log density carries
the names of the values it was computed from. :func:`get_dependencies` turns that into the
prior and posterior dependency graphs (Pyro's layout); :func:`~ember.infer.inspect.get_model_relations`
reads the same run for drawing. The public names are re-exported by :mod:`ember.infer.inspect`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import torch

from ember.ops.provenance import ProvenanceTensor, detach_provenance, get_provenance, track_provenance
from ember.poutine.handlers import trace
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample
from ember.primitives import validation_enabled

__all__ = ["ModelDependencies", "TrackProvenance", "get_dependencies", "is_sample_site", "site_is_deterministic"]

#: ``{downstream: {upstream: plates}}``: the plate names are those across which the pair is
#: fully (not just elementwise) dependent.
_Graph = dict[str, dict[str, set[str]]]


class ModelDependencies(TypedDict):
    """What :func:`get_dependencies` returns, keyed as in Pyro."""

    prior_dependencies: _Graph
    posterior_dependencies: _Graph


def is_sample_site(msg: Message, *, include_deterministic: bool = False) -> bool:
    """Whether ``msg`` is a sample site that contributes a density to the model.

    Subsample sites never are. Unless ``include_deterministic``, neither are observations
    masked off with ``mask=False`` nor point masses (a :class:`~ember.distributions.Delta`,
    possibly wrapped, as :func:`~ember.primitives.deterministic` records).

    :param msg: a message or trace node.
    :param include_deterministic: count masked observations and point masses too.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine import trace
    >>> def model():
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    ...     ember.deterministic("y", x + 1)
    >>> tr = trace(model).get_trace()
    >>> is_sample_site(tr.nodes["x"]), is_sample_site(tr.nodes["y"])
    (True, False)
    >>> is_sample_site(tr.nodes["y"], include_deterministic=True)
    True
    """
    if msg["type"] != "sample" or site_is_subsample(msg):
        return False
    if include_deterministic:
        return True
    if msg["is_observed"] and msg["mask"] is False:
        return False
    fn: Any = msg["fn"]
    while hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return type(fn).__name__ != "Delta"


def site_is_deterministic(msg: Message) -> bool:
    """Whether ``msg`` is a site recorded by :func:`~ember.primitives.deterministic`.

    :param msg: a message or trace node.

    >>> import ember, torch
    >>> from ember.poutine import trace
    >>> tr = trace(lambda: ember.deterministic("y", torch.ones(2))).get_trace()
    >>> site_is_deterministic(tr.nodes["y"])
    True
    """
    return msg["type"] == "sample" and bool(msg["infer"].get("_deterministic", False))


class TrackProvenance(Messenger):
    """Tag each sample site's value and each param's value with the site's own name.

    Changes step 3 (postprocess) of ``sample`` and ``param`` messages: the value becomes a
    :class:`~ember.ops.provenance.ProvenanceTensor` whose provenance is ``{name}``, and
    whatever the model computes from it carries the name on. Only direct dependencies are
    recorded: a tagged value forgets the names it was itself computed from. Sites that
    :func:`is_sample_site` rejects (subsample sites, masked observations, point masses such
    as deterministic sites) are not tagged, so their values pass their inputs' names on;
    with ``include_deterministic`` every sample site but subsample sites is tagged.

    :param include_deterministic: tag deterministic sites and point masses too.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.ops.provenance import get_provenance
    >>> from ember.poutine import trace
    >>> def model():
    ...     a = ember.sample("a", dist.Normal(0.0, 1.0))
    ...     b = ember.deterministic("b", 2 * a)
    ...     return ember.sample("c", dist.Normal(b, 1.0))
    >>> with TrackProvenance():
    ...     tr = trace(model).get_trace()
    >>> sorted(get_provenance(tr.nodes["c"]["fn"].log_prob(tr.nodes["c"]["value"])))
    ['a', 'c']
    """

    def __init__(self, *, include_deterministic: bool = False) -> None:
        self.include_deterministic = include_deterministic

    def _pyro_post_sample(self, msg: Message) -> None:
        if (self.include_deterministic and site_is_deterministic(msg)) or is_sample_site(
            msg, include_deterministic=self.include_deterministic
        ):
            self._tag(msg)

    def _pyro_post_param(self, msg: Message) -> None:
        self._tag(msg)

    @staticmethod
    def _tag(msg: Message) -> None:
        # A value that is no tensor (some user distributions return numbers) passes as it is.
        msg["value"] = track_provenance(detach_provenance(msg["value"]), frozenset({msg["name"]}))


class _TrackProvenanceNamingSites(TrackProvenance):
    """Also remembers the last sample site seen, to say where a failing model stopped."""

    last_site: str | None = None

    def _pyro_post_sample(self, msg: Message) -> None:
        self.last_site = msg["name"]
        super()._pyro_post_sample(msg)


def _trace_with_provenance(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] | None,
    model_kwargs: dict[str, Any] | None,
    include_deterministic: bool,
) -> Trace:
    """One run of ``model`` under :class:`TrackProvenance`, leaving the global RNG as it was.

    An exception from the model propagates with a note naming the last site reached.
    """
    args = () if model_args is None else model_args
    kwargs = {} if model_kwargs is None else model_kwargs
    tracker = _TrackProvenanceNamingSites(include_deterministic=include_deterministic)
    try:
        with torch.random.fork_rng(), torch.no_grad(), validation_enabled(False), tracker:
            return trace(model).get_trace(*args, **kwargs)
    except Exception as e:
        where = f"after site '{tracker.last_site}'" if tracker.last_site is not None else "before its first site"
        e.add_note(f"while inspecting the model's structure: the model raised {where}")
        raise


def get_dependencies(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    include_deterministic: bool = False,
) -> ModelDependencies:
    """The dependency structure of ``model``'s sample sites, found from one run of it.

    ``prior_dependencies`` maps every sample site (latent or observed), in model order, to
    the latent sites its density reads directly, itself included. ``posterior_dependencies``
    maps every latent site to the later sites it is coupled with given the observations:
    the prior edges reversed, plus an edge between every two latents whose values meet in
    one density (moralization; it assumes every latent is observed, perhaps indirectly).
    Each edge carries the set of plate names across which the dependence is all-to-all
    rather than elementwise; a site coupled with itself across plate ``p`` (e.g. through a
    sum over ``p``) means its elements depend on each other. Point masses
    (:func:`~ember.primitives.deterministic` sites), observations masked with
    ``mask=False``, subsample sites and latents with no elements are left out: a
    dependency through a deterministic site goes to that site's inputs.

    :param model: the model (run once, with the global RNG state restored afterwards).
    :param model_args: its positional arguments.
    :param model_kwargs: its keyword arguments.
    :param include_deterministic: tag deterministic sites with their own names, as
        :class:`TrackProvenance` does; they still do not appear in the result, so a
        dependency passing through one is not reported (as in Pyro).
    :returns: ``{"prior_dependencies": ..., "posterior_dependencies": ...}``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     a = ember.sample("a", dist.Normal(0.0, 1.0))
    ...     b = ember.sample("b", dist.LogNormal(0.0, 1.0))
    ...     with ember.plate("p", 3):
    ...         c = ember.sample("c", dist.Normal(a, b))
    ...     ember.sample("d", dist.Normal(c.sum(), 1.0), obs=torch.tensor(0.0))
    >>> deps = get_dependencies(model)
    >>> deps["prior_dependencies"]
    {'a': {'a': set()}, 'b': {'b': set()}, 'c': {'c': set(), 'a': set(), 'b': set()}, 'd': {'d': set(), 'c': set()}}
    >>> deps["posterior_dependencies"]["c"]  # the elements of c meet in d's density
    {'c': {'p'}, 'd': set()}
    """
    tr = _trace_with_provenance(model, model_args, model_kwargs, include_deterministic)
    sites = [site for site in tr.nodes.values() if is_sample_site(site)]
    names = [str(site["name"]) for site in sites]
    observed = {name for name, site in zip(names, sites) if site["is_observed"]}
    plates = {name: {f.name for f in site["cond_indep_stack"] if f.vectorized} for name, site in zip(names, sites)}

    prior: _Graph = {name: {name: set()} for name in names}
    latents: list[str] = []  # the latent sites seen so far that can be upstream of a density
    for name, site in zip(names, sites):
        if latents:
            provenance = get_provenance(site["fn"].log_prob(site["value"]))
            prior[name].update((u, set()) for u in latents if u in provenance)
        if name not in observed and site["value"].numel():
            latents.append(name)

    # Reversed edges: latent upstream -> its downstream sites.
    posterior: _Graph = {name: {} for name in names if name not in observed}
    for d, upstreams in prior.items():
        for u, shared in upstreams.items():
            if u not in observed:
                posterior[u][d] = set(shared)
    # Moralization: two latents of one density become coupled; the edge goes from the
    # earlier site to the later one, and is all-to-all across the plates they share that
    # the density does not.
    position = {name: i for i, name in enumerate(names)}
    for d, upstreams in prior.items():
        coupled = [(u, shared) for u, shared in upstreams.items() if u not in observed]
        for u1, shared1 in coupled:
            for u2, shared2 in coupled:
                if position[u1] >= position[u2]:
                    edge = posterior[u2].setdefault(u1, set())
                    edge |= (plates[u1] & plates[u2]) - plates[d]
                    edge |= plates[u2] & shared1
                    edge |= plates[u1] & shared2
    return {"prior_dependencies": prior, "posterior_dependencies": posterior}
