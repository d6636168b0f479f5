"""`base_urls` in the models file: the endpoints (replicas) serving one model, with their limits.

Kept apart from `endpoints` so reading a models file does not import the HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EndpointSpec:
    """One entry of `base_urls` in the models file: a URL and its own limits."""

    url: str
    max_concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None


def parse_endpoints(where: str, value: Any) -> list[EndpointSpec] | None:
    """`base_urls: [URL, {url: URL, max_concurrency: 8, rpm: ..., tpm: ...}, ...]`."""
    if value is None:
        return None
    from masksql_pipe.lm.model_entries import ModelEntry, validate_part

    entry = validate_part(ModelEntry, {"base_urls": value}, where)
    return [EndpointSpec(**endpoint.model_dump()) for endpoint in entry.base_urls or ()]
