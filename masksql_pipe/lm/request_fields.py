"""What a request to an OpenAI-compatible endpoint carries besides the messages, by default.

Sampling defaults (temperature 0), the answer's JSON schema in the endpoint's own form, and a
conservative concurrency for servers on this machine. Kept apart from the client so the
registry can describe a model without importing the `openai` package.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from masksql_pipe.errors import ConfigError

DEFAULT_SAMPLING: dict[str, Any] = {"temperature": 0}
"""Sent unless the model's `settings` say otherwise (a setting given as null is not sent)."""

STRUCTURED_FORMS = ("json_schema", "json_object")
"""How an endpoint takes an answer's JSON schema: OpenAI/vLLM's form, or the llama.cpp server's."""

LOCAL_CONCURRENCY = 4
"""Calls in flight to a server on this machine unless `max_concurrency` says otherwise: a local
server answers a few requests at a time and queues the rest, which would only inflate latency."""

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def effective_sampling(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The sampling settings a request carries: the defaults, then the configured ones; a
    setting configured as None is left out (for endpoints that refuse it)."""
    merged = {**DEFAULT_SAMPLING, **(settings or {})}
    return {key: value for key, value in merged.items() if value is not None}


def check_structured(structured: Any, where: str) -> str | None:
    """`structured` as configured, or ConfigError naming `where` when it is not a known form."""
    if structured is None or structured in STRUCTURED_FORMS:
        return structured
    raise ConfigError(
        f"{where}: 'structured' must be one of {', '.join(STRUCTURED_FORMS)}, got {structured!r}"
    )


def response_format(structured: str | None, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The `response_format` carrying `schema` in the endpoint's own form (None: send none).

    `json_schema`: OpenAI's form (also vLLM's); `json_object`: the llama.cpp server's, which
    refuses OpenAI's.
    """
    if structured is None or schema is None:
        return None
    if structured == "json_schema":
        title = str(schema.get("title") or "answer")
        name = "".join(c if c.isalnum() or c in "_-" else "_" for c in title)[:64]
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": False},
        }
    if structured == "json_object":
        return {"type": "json_object", "schema": schema}
    raise ConfigError(f"structured output {structured!r}: use one of {', '.join(STRUCTURED_FORMS)}")


def default_concurrency(base_url: str) -> int | None:
    """LOCAL_CONCURRENCY for an endpoint on this machine, None (the run's setting) elsewhere."""
    host = urlsplit(base_url).hostname or ""
    return LOCAL_CONCURRENCY if host in _LOCAL_HOSTS else None
