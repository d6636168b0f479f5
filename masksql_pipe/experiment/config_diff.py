"""The settings two runs were configured with differently, as (dotted key, A, B) text triples.

Shared by `compare` on the terminal and the HTML comparison page; secrets stay redacted.
"""

from __future__ import annotations

import json
from typing import Any

from masksql_pipe.experiment.config import iter_dotted, redact, to_jsonable

ABSENT = "—"
"""Shown for a setting one of the runs does not have."""


def config_differences(config_a: Any, config_b: Any) -> list[tuple[str, str, str]]:
    """(key, value in A, value in B) for every leaf setting that differs, A's order first."""

    def leaves(config: Any) -> dict[str, str]:
        clean = redact(to_jsonable(config))
        return {
            key: json.dumps(value, ensure_ascii=False)
            for key, value in iter_dotted(clean)
            if not isinstance(value, dict | list) or not value
        }

    a, b = leaves(config_a), leaves(config_b)
    keys = [key for key in a if a.get(key) != b.get(key)]
    keys += [key for key in b if key not in a]
    return [(key, a.get(key, ABSENT), b.get(key, ABSENT)) for key in keys]
