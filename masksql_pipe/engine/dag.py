"""DAG node specs -> validated, deterministically ordered stages (graphlib underneath)."""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from masksql_pipe.engine.stage import JsonListTransformer
from masksql_pipe.errors import SpecError

NodeAdapter = Callable[[str, Any, list[str]], JsonListTransformer]
"""Turns a node's ``function`` that is not a stage (e.g. an async function) into a stage."""


def order_nodes(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Validate ``{"name", "function", "inputs"}`` nodes and return names in run order.

    Ties are broken by spec order, so the same spec always gives the same file numbers.
    """
    if not nodes:
        raise SpecError("DAG has no nodes: give at least one {'name', 'function', 'inputs'} node")
    position: dict[str, int] = {}
    inputs: dict[str, list[str]] = {}
    for index, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            raise SpecError(f"DAG node {index} is a {type(node).__name__}, expected a dict")
        missing = {"name", "function"} - node.keys()
        if missing:
            raise SpecError(f"DAG node {index} lacks {', '.join(sorted(missing))}")
        name = node["name"]
        if not isinstance(name, str) or not name:
            raise SpecError(f"DAG node {index} has an invalid name {name!r}")
        if name in position:
            raise SpecError(
                f"duplicate DAG node name {name!r} (nodes {position[name]} and {index})"
            )
        node_inputs = node.get("inputs", [])
        if not isinstance(node_inputs, list | tuple):
            raise SpecError(f"DAG node {name!r}: inputs must be a list of node names")
        seen: set[str] = set()
        for item in node_inputs:
            if item in seen:
                raise SpecError(f"DAG node {name!r} lists input {item!r} twice")
            seen.add(item)
        position[name] = index
        inputs[name] = list(node_inputs)
    for name, node_inputs in inputs.items():
        for item in node_inputs:
            if item not in position:
                raise SpecError(f"DAG node {name!r} names unknown input {item!r}")

    sorter = graphlib.TopologicalSorter(inputs)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])  # each node feeds the next
        raise SpecError(f"DAG has a cycle: {' -> '.join(cycle)}") from None

    final = nodes[-1]["name"]
    needed = _ancestors(final, inputs) | {final}
    for node in nodes:
        if node["name"] not in needed:
            raise SpecError(
                f"DAG node {node['name']!r} is unreachable: the final node {final!r} "
                "does not depend on it, directly or through other nodes"
            )

    order: list[str] = []
    ready: set[str] = set()
    while sorter.is_active():
        ready.update(sorter.get_ready())
        first = min(ready, key=position.__getitem__)
        ready.remove(first)
        order.append(first)
        sorter.done(first)
    return order


def _ancestors(name: str, inputs: Mapping[str, list[str]]) -> set[str]:
    found: set[str] = set()
    stack = list(inputs[name])
    while stack:
        item = stack.pop()
        if item not in found:
            found.add(item)
            stack.extend(inputs[item])
    return found


def build_stages(
    spec: Sequence[Any] | Mapping[str, Any], adapt: NodeAdapter | None = None
) -> list[JsonListTransformer]:
    """Turn a pipeline spec into an ordered list of stages.

    Accepts a list of stages (run as given), a dict ``{name: stage}`` (linear, in dict order),
    or a list of DAG nodes ``{"name", "function", "inputs"}``.
    """
    if isinstance(spec, Mapping):
        nodes = [
            {"name": name, "function": function, "inputs": [prev] if prev else []}
            for prev, (name, function) in zip([None, *spec], spec.items(), strict=False)
        ]
        return _stages_from_nodes(nodes, adapt) if nodes else _empty()
    spec = list(spec)
    if not spec:
        return _empty()
    if all(isinstance(item, Mapping) for item in spec):
        return _stages_from_nodes(spec, adapt)
    for index, item in enumerate(spec):
        if not isinstance(item, JsonListTransformer):
            raise SpecError(
                f"pipeline item {index} is a {type(item).__name__}; expected a "
                "JsonListTransformer stage or a DAG node dict"
            )
    return spec


def _empty() -> list[JsonListTransformer]:
    raise SpecError("pipeline has no stages")


def _stages_from_nodes(
    nodes: Sequence[Mapping[str, Any]], adapt: NodeAdapter | None
) -> list[JsonListTransformer]:
    order = order_nodes(nodes)
    by_name = {node["name"]: node for node in nodes}
    stages = []
    for name in order:
        function = by_name[name]["function"]
        if isinstance(function, JsonListTransformer):
            stage = function
        elif adapt is not None:
            stage = adapt(name, function, list(by_name[name].get("inputs", [])))
        else:
            raise SpecError(
                f"DAG node {name!r}: function is a {type(function).__name__}; expected a "
                "JsonListTransformer stage"
            )
        try:
            stage.name = name
        except Exception as exc:
            raise SpecError(f"DAG node {name!r}: {exc}") from None
        stages.append(stage)
    return stages
