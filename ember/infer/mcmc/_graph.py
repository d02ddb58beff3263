"""Simplification of a recorded potential graph before it is run at every leapfrog step.

The recording keeps everything the model computed, much of it independent of the latent
values: data constants copied, ``log(scale)`` of fixed scales, zeros shaped like an input.
Folding those once at build time removes about half the nodes of a typical model, and each
node costs a dispatch per leapfrog step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx

# Ops whose value depends only on the (static) shape of their tensor input, not its values.
_SHAPE_ONLY = {
    torch.ops.aten.zeros_like.default,
    torch.ops.aten.ones_like.default,
    torch.ops.aten.full_like.default,
    torch.ops.aten.empty_like.default,
    torch.ops.aten.new_zeros.default,
    torch.ops.aten.new_ones.default,
    torch.ops.aten.new_full.default,
    torch.ops.aten.new_empty.default,
}
_EMPTY_LIKE = {torch.ops.aten.empty_like.default, torch.ops.aten.new_empty.default}


def _nondeterministic(target: Any) -> bool:
    schema = getattr(target, "_schema", None)
    if schema is None:
        return True
    tags = getattr(target, "tags", ())
    return torch.Tag.nondeterministic_seeded in tags or "rand" in str(schema.name)


def fold_constants(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Evaluate, once, every node that does not depend on the graph's inputs' values, and
    store the results as constants of ``graph_module`` (changed in place and returned)."""
    graph = graph_module.graph
    values: dict[torch.fx.Node, Any] = {}
    shapes: dict[torch.fx.Node, Any] = {}
    for node in graph.nodes:
        if node.op == "get_attr":
            values[node] = getattr(graph_module, node.target)
        elif node.op == "placeholder":
            shapes[node] = node.meta.get("val")
    count = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or _nondeterministic(node.target):
            continue
        inputs = node.all_input_nodes
        shape_only = node.target in _SHAPE_ONLY and node.target not in _EMPTY_LIKE
        if not all(n in values for n in inputs) and not (shape_only and inputs):
            continue
        if shape_only and not all(n in values for n in inputs):
            fake = inputs[0].meta.get("val")
            if not isinstance(fake, torch.Tensor):
                continue
            example = torch.empty(tuple(fake.shape), dtype=fake.dtype)
            args = torch.fx.node.map_arg(node.args, lambda n: example if n is inputs[0] else values.get(n))
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: values.get(n))
        else:
            args = torch.fx.node.map_arg(node.args, lambda n: values[n])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: values[n])
        try:
            result = node.target(*args, **kwargs)
        except Exception:  # leave anything that cannot run out of context to the graph
            continue
        if not isinstance(result, torch.Tensor):
            values[node] = result
            continue
        name = f"_folded_{count}"
        count += 1
        graph_module.register_buffer(name, result.detach().clone(), persistent=False)
        with graph.inserting_before(node):
            constant = graph.get_attr(name)
        constant.meta = dict(node.meta)
        node.replace_all_uses_with(constant)
        graph.erase_node(node)
        values[constant] = result
    graph.eliminate_dead_code()
    graph_module.recompile()
    return graph_module


_aten = torch.ops.aten
_RESHAPES = {_aten.view.default, _aten._unsafe_view.default, _aten.reshape.default, _aten.expand.default}


def _is_identity(node: torch.fx.Node) -> bool:
    target, args = node.target, node.args
    if target is _aten.alias.default:
        return True
    if target is _aten.permute.default:
        perm: Any = args[1]
        return bool(list(perm) == list(range(len(perm))))
    if target in _RESHAPES:
        return True  # kept only if the shapes match, checked by the caller
    if target is _aten.pow.Tensor_Scalar:
        return isinstance(args[1], (int, float)) and args[1] == 1
    if target in (_aten.mul.Tensor, _aten.mul.Scalar, _aten.div.Tensor, _aten.div.Scalar):
        return isinstance(args[1], (int, float)) and args[1] == 1
    if target in (_aten.add.Tensor, _aten.sub.Tensor, _aten.add.Scalar, _aten.sub.Scalar):
        return isinstance(args[1], (int, float)) and args[1] == 0 and not node.kwargs
    return False


def drop_identities(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Remove nodes that return their first input unchanged (same shape and dtype)."""
    graph = graph_module.graph
    for node in list(graph.nodes):
        if node.op != "call_function" or not node.args or not isinstance(node.args[0], torch.fx.Node):
            continue
        if not _is_identity(node):
            continue
        source = node.args[0]
        out, inp = node.meta.get("val"), source.meta.get("val")
        if not isinstance(out, torch.Tensor) or not isinstance(inp, torch.Tensor):
            continue
        if tuple(out.shape) != tuple(inp.shape) or out.dtype != inp.dtype:
            continue
        node.replace_all_uses_with(source)
        graph.erase_node(node)
    graph.eliminate_dead_code()
    graph_module.recompile()
    return graph_module
