"""Dotted paths into nested rows: ``get_path(row, "a.b.0")`` and ``set_path(row, "a.b", v)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def _parts(path: str) -> list[str]:
    """Segments of a dotted path; the empty path is the object itself."""
    return path.split(".") if path else []


def _step(node: Any, part: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(part, _MISSING)
    if isinstance(node, list) and part.lstrip("-").isdigit():
        index = int(part)
        return node[index] if -len(node) <= index < len(node) else _MISSING
    return _MISSING


def has_path(obj: Any, path: str) -> bool:
    """Whether every segment of ``path`` exists in ``obj``."""
    node = obj
    for part in _parts(path):
        node = _step(node, part)
        if node is _MISSING:
            return False
    return True


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """Value at a dotted path (dict keys; integer segments index lists), or ``default``."""
    node = obj
    for part in _parts(path):
        node = _step(node, part)
        if node is _MISSING:
            return default
    return node


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, creating missing dicts on the way.

    KeyError names the path when it runs through a value or a missing list item.
    """
    parts = _parts(path)
    if not parts:
        raise KeyError("cannot set the empty path")
    node: Any = obj
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if _step(node, part) is _MISSING:
                raise KeyError(f"{where!r}: no list item {part!r}")
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            if part not in node:
                node[part] = {}
            node = node[part]
        else:  # never overwrite a value to make room for a path through it
            parent = ".".join(parts[:depth]) or "the root"
            raise KeyError(f"{where!r}: {parent!r} is not a mapping or a list")


def delete_path(obj: dict[str, Any], path: str) -> bool:
    """Remove the key at a dotted path; returns whether something was removed."""
    parent_path, _, last = path.rpartition(".")
    parent = get_path(obj, parent_path) if parent_path else obj
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    return False
