"""Dotted paths into nested rows and settings (``get_path(row, "a.b.0")``), through glom.

One restricted glom: mapping keys and list indices only, so a path never reaches an attribute
(``name.upper`` is missing, not a bound method), and each segment is literal (``*`` is a key).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from glom import Assign, GlomError, Glommer, Path

_MISSING = object()


def _item(seq: list[Any], key: Any) -> Any:
    """A list item by a segment that must be an integer (``"-1"`` too)."""
    return seq[int(key)]


def _set_item(seq: list[Any], key: Any, value: Any) -> None:
    seq[int(key)] = value


GLOM = Glommer(register_default_types=False)
"""glom over JSON-like data only: dicts/mappings by key, lists by index."""
GLOM.register(dict, get=operator.getitem, assign=operator.setitem, exact=False)
GLOM.register(Mapping, get=operator.getitem, exact=False)
GLOM.register(list, get=_item, assign=_set_item)


def _parts(path: str) -> list[str]:
    """Segments of a dotted path; the empty path is the object itself."""
    return path.split(".") if path else []


def has_path(obj: Any, path: str) -> bool:
    """Whether every segment of ``path`` exists in ``obj``."""
    return get_path(obj, path, _MISSING) is not _MISSING


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """Value at a dotted path (dict keys; integer segments index lists), or ``default``."""
    parts = _parts(path)
    if not parts:
        return obj
    try:
        return GLOM.glom(obj, Path(*parts))
    except (GlomError, ValueError, IndexError, KeyError, TypeError):
        return default


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, creating missing dicts on the way.

    KeyError names the path when it runs through a value or a missing list item (a value is
    never overwritten to make room for a path through it).
    """
    parts = _parts(path)
    if not parts:
        raise KeyError("cannot set the empty path")
    try:
        GLOM.glom(obj, Assign(Path(*parts), value, missing=dict))
    except GlomError:
        raise KeyError(_blocked(obj, parts)) from None


def _blocked(obj: Any, parts: list[str]) -> str:
    """Why a path cannot be set: the first segment that runs through a value or a missing item."""
    for depth, part in enumerate(parts):
        parent = get_path(obj, ".".join(parts[:depth]))
        where = ".".join(parts[: depth + 1])
        if isinstance(parent, list) and not has_path(parent, part):
            return f"{where!r}: no list item {part!r}"
        if not isinstance(parent, dict | list):
            return (
                f"{where!r}: {'.'.join(parts[:depth]) or 'the root'!r} is not a mapping or a list"
            )
    return f"{'.'.join(parts)!r}: cannot be set"


def delete_path(obj: dict[str, Any], path: str) -> bool:
    """Remove the key at a dotted path; returns whether something was removed."""
    parent_path, _, last = path.rpartition(".")
    parent = get_path(obj, parent_path) if parent_path else obj
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    return False
