"""`base_urls` in the models file: the endpoints (replicas) serving one model, with their limits.

Kept apart from `endpoints` so reading a models file does not import the HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from masksql_pipe.errors import ConfigError


@dataclass(frozen=True)
class EndpointSpec:
    """One entry of `base_urls` in the models file: a URL and its own limits."""

    url: str
    max_concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None


_ENDPOINT_KEYS = ("url", "max_concurrency", "rpm", "tpm")


def parse_endpoints(where: str, value: Any) -> list[EndpointSpec] | None:
    """`base_urls: [URL, {url: URL, max_concurrency: 8, rpm: ..., tpm: ...}, ...]`."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: 'base_urls' must be a non-empty list of http(s) URLs")
    found: list[EndpointSpec] = []
    for number, item in enumerate(value):
        entry = {"url": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: base_urls[{number}] must be a URL or a mapping with 'url'")
        unknown = sorted(set(entry) - set(_ENDPOINT_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: base_urls[{number}]: unknown key {unknown[0]!r} "
                f"(known: {', '.join(_ENDPOINT_KEYS)})"
            )
        url = entry.get("url")
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise ConfigError(f"{where}: base_urls[{number}] must be an http(s) URL, got {url!r}")
        limits: dict[str, Any] = {}
        for key in ("max_concurrency", "rpm", "tpm"):
            number_value = entry.get(key)
            if number_value is None:
                continue
            if isinstance(number_value, bool) or not isinstance(number_value, int | float):
                raise ConfigError(f"{where}: base_urls[{number}].{key} must be a number")
            if number_value <= 0:
                raise ConfigError(f"{where}: base_urls[{number}].{key} must be positive")
            limits[key] = int(number_value) if key == "max_concurrency" else float(number_value)
        found.append(EndpointSpec(url.rstrip("/"), **limits))
    if len({e.url for e in found}) != len(found):
        raise ConfigError(f"{where}: 'base_urls' lists the same URL twice")
    return found
