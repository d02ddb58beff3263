"""The committed SVGs in docs/images picture what their sources say.

The site shows generated images committed to the repository (the build needs no ``dot``),
so these tests check that each picture holds exactly the nodes and edges of its source:
the DOT file for the lifecycle diagram, and ``render_model``'s graph of the model on the
render_model page for that page's picture.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import torch

import ember
import ember.distributions as dist
from ember.distributions import constraints

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _svg_titles(svg: Path) -> set[str]:
    # dot writes one <title> per graph, cluster, node and edge ("a->b").
    return {html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", svg.read_text(encoding="utf-8"))}


def _dot_nodes_and_edges(source: str) -> set[str]:
    nodes = set(re.findall(r"^\s*(\w+) \[", source, flags=re.MULTILINE)) - {"graph", "node", "edge"}
    edges: set[str] = set()
    for chain in re.findall(r"^\s*(\w+(?:\s*->\s*\w+)+)", source, flags=re.MULTILINE):
        names = [n.strip() for n in chain.split("->")]
        edges.update(f"{a}->{b}" for a, b in zip(names, names[1:]))
    clusters = set(re.findall(r"subgraph (cluster_\w+)", source))
    return nodes | edges | clusters


def test_lifecycle_svg_has_the_nodes_and_edges_of_its_dot_source() -> None:
    source = (DOCS / "images" / "message_lifecycle.dot").read_text(encoding="utf-8")
    expected = _dot_nodes_and_edges(source) | {"message_lifecycle"}
    assert "p_plate->p_scale" in expected and "q_plate->continuation" in expected
    assert _svg_titles(DOCS / "images" / "message_lifecycle.svg") == expected


def _page_model(data: torch.Tensor) -> None:
    mu = ember.sample("mu", dist.Normal(0.0, 5.0))
    tau = ember.param("tau", torch.tensor(1.0), constraint=constraints.positive)
    with ember.plate("groups", 3, dim=-2):
        theta = ember.sample("theta", dist.Normal(mu, tau))
        with ember.plate("obs_per_group", 4, dim=-1):
            ember.sample("y", dist.Normal(theta, 1.0), obs=data)
    ember.deterministic("grand_mean", theta.mean())


def test_render_model_page_image_is_the_pages_graph() -> None:
    pytest.importorskip("graphviz")
    graph = ember.render_model(
        _page_model,
        model_args=(torch.zeros(3, 4),),
        render_distributions=True,
        render_params=True,
        render_deterministic=True,
    )
    page = (DOCS / "tutorials" / "render_model.md").read_text(encoding="utf-8")
    # The page prints this source in a doctest, so the test's model is the page's model.
    assert graph.source.rstrip("\n") in page
    svg_titles = _svg_titles(DOCS / "images" / "render_model.svg")
    assert svg_titles - {"%3"} == _dot_nodes_and_edges(graph.source)
    assert {"tau->theta", "theta->grand_mean", "cluster_obs_per_group"} <= svg_titles
