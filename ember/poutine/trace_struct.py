"""The :class:`Trace`: an ordered record of a program's sites, with edges and log densities."""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterator

import opt_einsum
import torch

from ember.distributions.score_parts import ScoreParts
from ember.distributions.util import scale_and_mask
from ember.ops.packed import pack
from ember.poutine._shapes import format_shapes
from ember.poutine.message import Message
from ember.poutine.runtime import is_validation_enabled

__all__ = ["Trace", "allow_all_sites"]

SiteFilter = Callable[[str, Message], bool]


def allow_all_sites(name: str, site: Message) -> bool:
    """The default site filter: every site."""
    return True


def _total(log_p: torch.Tensor) -> torch.Tensor:
    # A 0-dim log density is its own sum: one kernel fewer per scalar site.
    return log_p if log_p.dim() == 0 else log_p.sum()


def _check_log_prob_sum(value: torch.Tensor, name: str) -> None:
    """Warn if a site's log density sum is NaN or +inf (-inf is a legitimate zero density).

    Pyro also hooks each sum's gradient; that gradient is just the loss's upstream gradient,
    NaN only when the loss itself is, so Ember checks values only and keeps backward free.
    """
    number = value.item()
    if math.isnan(number):
        warnings.warn(f"Encountered NaN: log_prob_sum at site '{name}'", UserWarning, stacklevel=3)
    elif number == math.inf:
        warnings.warn(f"Encountered +inf: log_prob_sum at site '{name}'", UserWarning, stacklevel=3)


def _check_site_sums(total: torch.Tensor, site_sums: list[tuple[str, torch.Tensor]]) -> None:
    """Warn about NaN or +inf site sums, looking at each site only when the total is suspect.

    NaN and +inf propagate into the total, so a finite (or -inf) total clears every site
    with one ``.item()``.
    """
    value = total.item()
    if math.isfinite(value) or value == -math.inf:
        return
    for name, site_sum in site_sums:
        _check_log_prob_sum(site_sum, name)


class Trace:
    """A graph of the sites one run of a program visited, in execution order.

    ``nodes`` maps each site name to its message (a dict); ``"flat"`` traces have no edges,
    ``"dense"`` traces record which sites each site may depend on.

    :param graph_type: ``"flat"`` or ``"dense"``.

    >>> tr = Trace()
    >>> tr.add_node("x", type="sample", value=1)
    >>> list(tr), "x" in tr, len(tr)
    (['x'], True, 1)
    """

    def __init__(self, graph_type: str = "flat") -> None:
        assert graph_type in ("flat", "dense"), f"{graph_type} not a valid graph type"
        self.graph_type = graph_type
        self.nodes: OrderedDict[str, Message] = OrderedDict()
        self._succ: OrderedDict[str, set[str]] = OrderedDict()
        self._pred: OrderedDict[str, set[str]] = OrderedDict()
        self.plate_to_symbol: dict[str, str] = {}
        self.symbol_to_dim: dict[str, int] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def edges(self) -> Iterator[tuple[str, str]]:
        for site, successors in self._succ.items():
            for successor in successors:
                yield site, successor

    def add_node(self, site_name: str, **kwargs: Any) -> None:
        """Add a site; a repeated param replaces the old one, any other repeat is an error.

        :raises RuntimeError: on a repeated sample site, or a name reused across site types.
        """
        site: Any = kwargs
        self._add_site(site_name, site)

    def _add_site(self, name: str, site: Message) -> None:
        existing = self.nodes.get(name)
        if existing is not None:
            if existing["type"] != site["type"]:
                raise RuntimeError(f"{name} is already in the trace as a {existing['type']}")
            if site["type"] != "param":
                raise RuntimeError(
                    f"Multiple {site['type']} sites named '{name}'; each site needs a unique "
                    f"name (inside a loop, include the index, e.g. f\"{name}_{{i}}\")"
                )
        self.nodes[name] = site
        self._pred[name] = set()
        self._succ[name] = set()

    def add_edge(self, site1: str, site2: str) -> None:
        for name in (site1, site2):
            if name not in self.nodes:
                self.add_node(name)
        self._succ[site1].add(site2)
        self._pred[site2].add(site1)

    def remove_node(self, site_name: str) -> None:
        for successor in self._succ[site_name]:
            self._pred[successor].discard(site_name)
        for predecessor in self._pred[site_name]:
            self._succ[predecessor].discard(site_name)
        del self.nodes[site_name], self._succ[site_name], self._pred[site_name]

    def predecessors(self, site_name: str) -> set[str]:
        return self._pred[site_name]

    def successors(self, site_name: str) -> set[str]:
        return self._succ[site_name]

    def copy(self) -> Trace:
        """A shallow copy: new node and edge maps sharing the node dicts and edge sets."""
        new = Trace(graph_type=self.graph_type)
        new.nodes.update(self.nodes)
        new._succ.update(self._succ)
        new._pred.update(self._pred)
        return new

    def topological_sort(self, reverse: bool = False) -> list[str]:
        """Site names ordered so that every edge points forward (backward if ``reverse``)."""
        visited: set[str] = set()
        postorder: list[str] = []

        def visit(name: str) -> None:
            visited.add(name)
            for successor in self._succ[name]:
                if successor not in visited:
                    visit(successor)
            postorder.append(name)

        for name in self._succ:
            if name not in visited:
                visit(name)
        return postorder if reverse else postorder[::-1]

    def _scoring_error(self, what: str, name: str, error: Exception, trailer: str = "") -> ValueError:
        shapes = self.format_shapes(last_site=name)
        return ValueError(f"Error while computing {what} at site '{name}':\n{error}\n{shapes}{trailer}")

    def _unscaled_log_prob(self, name: str, site: Message, what: str, trailer: str = "") -> torch.Tensor:
        """``fn.log_prob(value)`` at a site; a ``ValueError`` is re-raised naming the site and shapes."""
        fn: Any = site["fn"]
        try:
            log_p: torch.Tensor = fn.log_prob(site["value"], *site["args"], **site["kwargs"])
        except ValueError as e:
            raise self._scoring_error(what, name, e, trailer) from e
        return log_p

    def log_prob_sum(self, site_filter: SiteFilter = allow_all_sites) -> torch.Tensor | float:
        """The total scaled and masked log density of the sample sites (memoized per site).

        :param site_filter: ``(name, site) -> bool`` choosing the sites to include.
        """
        validate = is_validation_enabled()
        sums: list[torch.Tensor] = []
        fresh: list[tuple[str, torch.Tensor]] = []
        for name, site in self.nodes.items():
            if site["type"] != "sample" or (site_filter is not allow_all_sites and not site_filter(name, site)):
                continue
            site_sum = site.get("log_prob_sum")
            if site_sum is None:
                log_p = self._unscaled_log_prob(name, site, "log_prob_sum", "\n")
                site_sum = _total(scale_and_mask(log_p, site["scale"], site["mask"]))
                site["log_prob_sum"] = site_sum
                fresh.append((name, site_sum))
            sums.append(site_sum)
        if not sums:
            return 0.0
        # One stacked reduction instead of one tensor addition per site.
        result = sums[0] if len(sums) == 1 else torch.stack(sums).sum(0)
        if validate and fresh:
            _check_site_sums(result, fresh)
        return result

    def compute_log_prob(self, site_filter: SiteFilter = allow_all_sites) -> None:
        """Store ``unscaled_log_prob``, ``log_prob`` (batch-shaped) and ``log_prob_sum`` per site."""
        validate = is_validation_enabled()
        for name, site in self.nodes.items():
            if site["type"] != "sample" or not site_filter(name, site) or "log_prob" in site:
                continue
            log_p = self._unscaled_log_prob(name, site, "log_prob")
            site["unscaled_log_prob"] = log_p
            log_p = scale_and_mask(log_p, site["scale"], site["mask"])
            site["log_prob"] = log_p
            site["log_prob_sum"] = _total(log_p)
            if validate:
                _check_log_prob_sum(site["log_prob_sum"], name)

    def compute_score_parts(self) -> None:
        """Store scaled and masked :class:`~ember.distributions.ScoreParts` per sample site."""
        validate = is_validation_enabled()
        for name, site in self.nodes.items():
            if site["type"] != "sample" or "score_parts" in site:
                continue
            fn: Any = site["fn"]
            try:
                parts: ScoreParts = fn.score_parts(site["value"], *site["args"], **site["kwargs"])
            except ValueError as e:
                raise self._scoring_error("score_parts", name, e) from e
            site["unscaled_log_prob"] = parts.log_prob
            parts = parts.scale_and_mask(site["scale"], site["mask"])
            site["score_parts"] = parts
            site["log_prob"] = parts.log_prob
            site["log_prob_sum"] = _total(parts.log_prob)
            if validate:
                _check_log_prob_sum(site["log_prob_sum"], name)

    def detach_(self) -> None:
        """Detach every sample value from the autograd graph, in place."""
        for site in self.nodes.values():
            if site["type"] == "sample":
                site["value"] = site["value"].detach()

    @property
    def observation_nodes(self) -> list[str]:
        return [name for name, site in self.nodes.items() if site["type"] == "sample" and site["is_observed"]]

    @property
    def param_nodes(self) -> list[str]:
        return [name for name, site in self.nodes.items() if site["type"] == "param"]

    @property
    def stochastic_nodes(self) -> list[str]:
        return [name for name, _ in self.iter_stochastic_nodes()]

    @property
    def reparameterized_nodes(self) -> list[str]:
        return [
            name
            for name, site in self.nodes.items()
            if site["type"] == "sample" and not site["is_observed"] and getattr(site["fn"], "has_rsample", False)
        ]

    @property
    def nonreparam_stochastic_nodes(self) -> list[str]:
        reparameterized = set(self.reparameterized_nodes)
        return [name for name in self.stochastic_nodes if name not in reparameterized]

    def iter_stochastic_nodes(self) -> Iterator[tuple[str, Message]]:
        """The unobserved sample sites (subsample sites included), as ``(name, site)``."""
        for name, site in self.nodes.items():
            if site["type"] == "sample" and not site["is_observed"]:
                yield name, site

    def symbolize_dims(self, plate_to_symbol: dict[str, str] | None = None) -> None:
        """Give every plate dim an even symbol and every enumeration id an odd one.

        Writes ``infer["_dim_to_symbol"]`` (and ``_enumerate_symbol``) at each sample site
        and sets :attr:`plate_to_symbol` and :attr:`symbol_to_dim`.
        """
        plate_to_symbol = {} if plate_to_symbol is None else plate_to_symbol
        symbol_to_dim: dict[str, int] = {}
        for site in self.nodes.values():
            if site["type"] != "sample":
                continue
            dim_to_symbol: dict[int, str] = {}
            for frame in site["cond_indep_stack"]:
                if frame.dim is None:
                    continue
                symbol = plate_to_symbol.get(frame.name)
                if symbol is None:
                    symbol = opt_einsum.get_symbol(2 * len(plate_to_symbol))
                    plate_to_symbol[frame.name] = symbol
                symbol_to_dim[symbol] = frame.dim
                dim_to_symbol[frame.dim] = symbol
            infer = site["infer"]
            for dim, id_ in infer.get("_dim_to_id", {}).items():
                symbol = opt_einsum.get_symbol(1 + 2 * id_)
                symbol_to_dim[symbol] = dim
                dim_to_symbol[dim] = symbol
            enum_dim = infer.get("_enumerate_dim")
            if enum_dim is not None:
                infer["_enumerate_symbol"] = dim_to_symbol[enum_dim]
            infer["_dim_to_symbol"] = dim_to_symbol
        self.plate_to_symbol = plate_to_symbol
        self.symbol_to_dim = symbol_to_dim

    def pack_tensors(self, plate_to_symbol: dict[str, str] | None = None) -> None:
        """Store packed copies of ``mask``, ``log_prob`` and ``score_parts`` in ``site["packed"]``.

        Call after :meth:`compute_log_prob` or :meth:`compute_score_parts`.
        """
        self.symbolize_dims(plate_to_symbol)
        for name, site in self.nodes.items():
            if site["type"] != "sample":
                continue
            dim_to_symbol = site["infer"]["_dim_to_symbol"]
            packed = site.setdefault("packed", {})
            try:
                packed["mask"] = pack(site["mask"], dim_to_symbol)
                if "score_parts" in site:
                    parts = ScoreParts(*(pack(part, dim_to_symbol) for part in site["score_parts"]))
                    packed["score_parts"] = parts
                    packed["log_prob"] = parts.log_prob
                    packed["unscaled_log_prob"] = pack(site["unscaled_log_prob"], dim_to_symbol)
                elif "log_prob" in site:
                    packed["log_prob"] = pack(site["log_prob"], dim_to_symbol)
                    packed["unscaled_log_prob"] = pack(site["unscaled_log_prob"], dim_to_symbol)
            except ValueError as e:
                shapes = self.format_shapes(last_site=name)
                raise ValueError(f"Error while packing tensors at site '{name}':\n  {e}\n{shapes}") from e

    def format_shapes(self, title: str = "Trace Shapes:", last_site: str | None = None) -> str:
        """A table of the shapes of every param and sample site, as Pyro prints it.

        :param title: the first line.
        :param last_site: stop after this site.
        """
        return format_shapes(self.nodes, title, last_site)
