"""Dotted paths into nested rows: ``get_path(row, "a.b.0")`` and ``set_path(row, "a.b", v)``."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def _step(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list) and part.lstrip("-").isdigit():
        index = int(part)
        return node[index] if -len(node) <= index < len(node) else _MISSING
    return _MISSING


def has_path(obj: Any, path: str) -> bool:
    """Whether every segment of ``path`` exists in ``obj``."""
    node = obj
    for part in path.split("."):
        node = _step(node, part)
        if node is _MISSING:
            return False
    return True


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """Value at a dotted path (dict keys; integer segments index lists), or ``default``."""
    node = obj
    for part in path.split("."):
        node = _step(node, part)
        if node is _MISSING:
            return default
    return node


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, creating intermediate dicts as needed."""
    parts = path.split(".")
    node: Any = obj
    for part in parts[:-1]:
        nxt = _step(node, part)
        if nxt is _MISSING or not isinstance(nxt, dict | list):
            if not isinstance(node, dict):
                raise KeyError(f"cannot set {path!r}: {part!r} is not inside an object")
            nxt = node[part] = {}
        node = nxt
    last = parts[-1]
    if isinstance(node, list) and last.lstrip("-").isdigit():
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise KeyError(f"cannot set {path!r}: its parent is not an object")


def delete_path(obj: dict[str, Any], path: str) -> bool:
    """Remove the key at a dotted path; returns whether something was removed."""
    parent_path, _, last = path.rpartition(".")
    parent = get_path(obj, parent_path) if parent_path else obj
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    return False
