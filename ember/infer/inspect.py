"""Inspect a model's structure: which sites depend on which, and a graphviz picture of it.

:func:`get_dependencies` and :func:`get_model_relations` run the model once under
:class:`TrackProvenance`, which tags every latent value and param with its own name (a
:class:`~ember.ops.provenance.ProvenanceTensor`); each site's log density then carries the
names of the sites and params it was computed from. :func:`get_dependencies` gives the
prior and (moralized) posterior dependency graphs with their plates, as used by
:class:`~ember.infer.autoguide.AutoStructured` and :class:`~ember.infer.autoguide.AutoGaussian`.
The relations are
turned into a graph specification (:func:`generate_graph_specification`) and drawn with
graphviz (:func:`render_graph`, :func:`render_model`), with Pyro's layout: plates as
clusters, observed sites shaded, deterministic sites dashed, params as plain nodes.

Drawing needs the ``graphviz`` Python package (``pip install 'ember[render]'``) and, to
write an image file, the ``dot`` program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict

from ember.infer._dependencies import (
    ModelDependencies,
    TrackProvenance,
    _trace_with_provenance,
    get_dependencies,
    is_sample_site,
    site_is_deterministic,
)
from ember.ops.provenance import ProvenanceTensor, get_provenance
from ember.poutine.message import Message
from ember.poutine.util import site_is_subsample

__all__ = [
    "ModelDependencies",
    "ModelRelations",
    "ProvenanceTensor",
    "TrackProvenance",
    "generate_graph_specification",
    "get_dependencies",
    "get_model_relations",
    "is_sample_site",
    "render_graph",
    "render_model",
    "site_is_deterministic",
]


class ModelRelations(TypedDict):
    """What :func:`get_model_relations` finds, keyed as in Pyro."""

    sample_sample: dict[str, list[str]]
    sample_param: dict[str, list[str]]
    sample_dist: dict[str, str]
    param_constraint: dict[str, str]
    plate_sample: dict[str, list[str]]
    observed: list[str]


def _distribution_name(site: Message) -> str:
    if site_is_deterministic(site):
        return "Deterministic"
    fn: Any = site["fn"]
    # Wrappers (to_event, mask, expand) are drawn as the distribution they wrap.
    while type(fn).__name__ in ("Independent", "MaskedDistribution", "ExpandedDistribution"):
        fn = fn.base_dist
    return type(fn).__name__


def get_model_relations(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    include_deterministic: bool = False,
) -> ModelRelations:
    """The sites, params and plates of one run of ``model`` and how they depend on each other.

    :param include_deterministic: treat deterministic sites as nodes that their dependents
        depend on (otherwise the dependency goes to the deterministic site's own inputs).
    :returns: ``sample_sample`` (each sample site's upstream sample sites), ``sample_param``
        (its params), ``sample_dist`` (its distribution's class name), ``param_constraint``,
        ``plate_sample`` (each plate's sites) and ``observed`` (the observed sites).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0))
    ...     ember.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(0.5))
    >>> get_model_relations(model)["sample_sample"]
    {'z': [], 'x': ['z']}
    """
    tr = _trace_with_provenance(model, model_args, model_kwargs, include_deterministic)
    sites = {name: site for name, site in tr.nodes.items() if site["type"] == "sample" and not site_is_subsample(site)}
    params = {name: site for name, site in tr.nodes.items() if site["type"] == "param"}
    order = list(tr.nodes)
    relations: ModelRelations = {
        "sample_sample": {},
        "sample_param": {},
        "sample_dist": {},
        "param_constraint": {},
        "plate_sample": {},
        "observed": [],
    }
    for name, site in sites.items():
        fn: Any = site["fn"]
        if site_is_deterministic(site):
            fn = fn.base_dist  # a deterministic site's Delta is masked off; its inputs are not
        upstream = get_provenance(fn.log_prob(site["value"])) - {name}
        relations["sample_sample"][name] = sorted((u for u in upstream if u in sites), key=order.index)
        relations["sample_param"][name] = sorted((u for u in upstream if u in params), key=order.index)
        relations["sample_dist"][name] = _distribution_name(site)
        if site["is_observed"]:
            relations["observed"].append(name)
        for frame in site["cond_indep_stack"]:
            if frame.vectorized:
                relations["plate_sample"].setdefault(frame.name, []).append(name)
    for name, site in params.items():
        constraint = site["kwargs"].get("constraint")
        relations["param_constraint"][name] = str(constraint) if constraint is not None else "Real()"
    return relations


def _merge(all_relations: Sequence[ModelRelations]) -> ModelRelations:
    """The union of the relations of several runs (sites in order of first appearance)."""
    merged = all_relations[0]
    for relations in all_relations[1:]:
        for key in ("sample_sample", "sample_param", "plate_sample"):
            table: dict[str, list[str]] = merged[key]
            for name, values in relations[key].items():
                known = table.setdefault(name, [])
                known.extend(v for v in values if v not in known)
        merged["sample_dist"].update(relations["sample_dist"])
        merged["param_constraint"].update(relations["param_constraint"])
        merged["observed"].extend(n for n in relations["observed"] if n not in merged["observed"])
    return merged


def generate_graph_specification(model_relations: ModelRelations, render_params: bool = False) -> dict[str, Any]:
    """Turn model relations into what :func:`render_graph` draws.

    :param render_params: draw params (and their edges to the sites they feed).
    :returns: ``plate_groups`` (each plate's nodes; ``None`` for nodes outside every plate),
        ``plate_data`` (each plate's enclosing plate), ``node_data`` and ``edge_list``.
    """
    plate_groups: dict[str | None, list[str]] = {plate: list(names) for plate, names in model_relations["plate_sample"].items()}
    in_plates = {name for names in plate_groups.values() for name in names}
    outside = [name for name in model_relations["sample_sample"] if name not in in_plates]
    # Only the params some sample site reads are drawn as nodes (as in Pyro).
    used_params = [p for p in model_relations["param_constraint"] if any(p in ps for ps in model_relations["sample_param"].values())]
    if render_params:
        outside += used_params
    plate_groups[None] = outside
    # A plate's parent is the smallest other plate holding all of its sites.
    plate_data: dict[str, dict[str, str | None]] = {}
    for plate, names in model_relations["plate_sample"].items():
        holders = [
            other
            for other, others in model_relations["plate_sample"].items()
            if other != plate and set(names) <= set(others) and len(others) > len(names)
        ]
        parent = min(holders, key=lambda other: len(model_relations["plate_sample"][other])) if holders else None
        plate_data[plate] = {"parent": parent}
    node_data: dict[str, dict[str, Any]] = {
        name: {"is_observed": name in model_relations["observed"], "distribution": dist_name}
        for name, dist_name in model_relations["sample_dist"].items()
    }
    edge_list = [(parent, name) for name, parents in model_relations["sample_sample"].items() for parent in parents]
    if render_params:
        # Every param is described in the legend, even one no sample site reads.
        for name, constraint in model_relations["param_constraint"].items():
            node_data[name] = {"is_observed": False, "constraint": constraint, "distribution": None}
        edge_list += [(param, name) for name, ps in model_relations["sample_param"].items() for param in ps]
    return {"plate_groups": plate_groups, "plate_data": plate_data, "node_data": node_data, "edge_list": edge_list}


def _graphviz() -> Any:
    try:
        import graphviz  # type: ignore[import-untyped]  # graphviz ships no type information
    except ImportError as e:
        raise ImportError(
            "render_model needs the graphviz Python package: pip install 'ember[render]' "
            "(and the graphviz 'dot' program to write image files)"
        ) from e
    return graphviz


def render_graph(graph_specification: dict[str, Any], render_distributions: bool = False) -> Any:
    """Draw a graph specification as a ``graphviz.Digraph``.

    :param render_distributions: add a legend node naming each site's distribution (and
        each param's constraint).
    """
    graphviz = _graphviz()
    plate_groups = graph_specification["plate_groups"]
    plate_data = graph_specification["plate_data"]
    node_data = graph_specification["node_data"]

    def add_nodes(graph: Any, plate: str | None) -> None:
        for name in plate_groups[plate]:
            data = node_data[name]
            shape = "plain" if data["distribution"] is None else "ellipse"
            style = "filled,dashed" if data["distribution"] == "Deterministic" else "filled"
            graph.node(name, label=name, shape=shape, style=style, fillcolor="gray" if data["is_observed"] else "white")

    def add_plate(graph: Any, plate: str) -> None:
        with graph.subgraph(name="cluster_" + plate) as cluster:
            cluster.attr(label=plate, labeljust="r", labelloc="b")
            add_nodes(cluster, plate)
            for child, data in plate_data.items():
                if data["parent"] == plate:
                    add_plate(cluster, child)

    graph = graphviz.Digraph()
    add_nodes(graph, None)
    for plate, data in plate_data.items():
        if data["parent"] is None:
            add_plate(graph, plate)
    for source, target in graph_specification["edge_list"]:
        graph.edge(source, target)
    if render_distributions:
        lines = [
            f"{name} ~ {data['distribution']}" if data["distribution"] is not None else f"{name} : {data['constraint']}"
            for name, data in node_data.items()
        ]
        graph.node("distribution_description_node", label="".join(line + "\\l" for line in lines), shape="plaintext")
    return graph


def render_model(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] | list[tuple[Any, ...]] | None = None,
    model_kwargs: dict[str, Any] | list[dict[str, Any]] | None = None,
    filename: str | Path | None = None,
    render_distributions: bool = False,
    render_params: bool = False,
    render_deterministic: bool = False,
) -> Any:
    """Draw ``model``'s structure as a ``graphviz.Digraph`` (Pyro's layout).

    :param model_args: the model's arguments, or a list of argument tuples: the picture is
        then the union of the runs (e.g. when some sites appear only for some inputs).
    :param model_kwargs: keyword arguments, or a list of them matching ``model_args``.
    :param filename: also write the picture there; the extension chooses the format
        (``.svg``, ``.png``, ``.pdf``, ... any format ``dot`` writes).
    :param render_distributions: add a legend naming the distributions.
    :param render_params: draw params and their constraints.
    :param render_deterministic: draw edges into and out of deterministic sites.
    :raises ValueError: for a ``filename`` whose extension is not an image format.
    :raises ImportError: if the graphviz Python package is missing.
    """
    graphviz = _graphviz()
    args_list = model_args if isinstance(model_args, list) else [() if model_args is None else model_args]
    kwargs_list = model_kwargs if isinstance(model_kwargs, list) else [{} if model_kwargs is None else model_kwargs] * len(args_list)
    if len(kwargs_list) != len(args_list):
        raise ValueError(f"render_model got {len(args_list)} model_args but {len(kwargs_list)} model_kwargs")
    fmt = None
    if filename is not None:
        fmt = Path(filename).suffix.lstrip(".").lower()
        if fmt not in graphviz.FORMATS:
            raise ValueError(
                f"render_model cannot write {str(filename)!r}: unknown format {fmt!r}; use one of {sorted(graphviz.FORMATS)}"
            )
    relations = _merge(
        [get_model_relations(model, args, kwargs, render_deterministic) for args, kwargs in zip(args_list, kwargs_list)]
    )
    graph = render_graph(generate_graph_specification(relations, render_params), render_distributions)
    if filename is not None:
        graph.render(outfile=str(filename), format=fmt, cleanup=True)
    return graph
