"""What a stage did to one row: the fields it added, changed (before and after) or removed."""

from __future__ import annotations

from typing import Any


def row_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Fields a stage added, changed (before and after) or removed in one row."""
    added = {k: v for k, v in after.items() if k not in before}
    changed = {
        k: {"before": before[k], "after": v}
        for k, v in after.items()
        if k in before and before[k] != v
    }
    removed = [k for k in before if k not in after]
    result: dict[str, Any] = {"added": added, "changed": changed}
    if removed:
        result["removed"] = removed
    return result
