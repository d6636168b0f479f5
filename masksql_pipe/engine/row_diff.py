"""What a stage did to one row: the fields it added, changed (before and after) or removed."""

from __future__ import annotations

from typing import Any


def row_diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Fields a stage added, changed (before and after) or removed in one row.

    A field holding a dict on both sides is compared key by key, named by its dotted path
    (``stages.infer`` added), rather than shown as a whole dict before and after.
    """
    added: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    removed: list[str] = []
    for key, value in after.items():
        name = f"{prefix}{key}"
        if key not in before:
            added[name] = value
        elif isinstance(before[key], dict) and isinstance(value, dict):
            inner = row_diff(before[key], value, f"{name}.")
            added.update(inner["added"])
            changed.update(inner["changed"])
            removed.extend(inner.get("removed", []))
        elif before[key] != value:
            changed[name] = {"before": before[key], "after": value}
    removed.extend(f"{prefix}{key}" for key in before if key not in after)
    result: dict[str, Any] = {"added": added, "changed": changed}
    if removed:
        result["removed"] = removed
    return result
