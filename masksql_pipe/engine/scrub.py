"""Scrub secrets from text before it is written anywhere: a stage file, a record, a run log.

Three kinds of leak are caught: a known key (registered by the model that uses it, or held in
an environment variable whose name says key/token/secret), any echoed *prefix* of such a key
of ``MIN_ECHO`` characters or more (servers answer "Incorrect API key provided: sk-SECRE****"),
and key-shaped tokens (``sk-...``, ``Bearer ...``) whoever they belong to.
"""

from __future__ import annotations

import os
import re
from typing import Any

MIN_ECHO = 6
"""Shortest prefix of a known key that is taken for an echo of it."""
MIN_KEY = 16
"""Shortest value taken for a key (shorter secrets would match ordinary words)."""
REDACTED = "***"

_registered: set[str] = set()
_SECRET_NAME = re.compile(r"(?i)(api_?key|token|secret|password|passwd)")
_KEY_SHAPED = re.compile(
    r"\b(?:sk|pk|rk|sess)-[A-Za-z0-9_\-]{3,}\**"  # OpenAI-style keys, also masked echoes
    r"|(?i:\b(?:bearer|basic))\s+[A-Za-z0-9._~+/=\-]{6,}\**"  # credentials in headers
)


def register_secret(value: str | None) -> None:
    """Remember a key in use, so its echoes are scrubbed (models call this with their key)."""
    if value and len(value) >= MIN_KEY:
        _registered.add(value)


def known_secrets() -> set[str]:
    """Registered keys and the values of secret-named environment variables."""
    return _registered | _environment_secrets()


_scanned: tuple[dict[Any, Any] | None, frozenset[str]] = (None, frozenset())
"""(the raw environment last scanned, the secrets found in it)."""


def _environment_secrets() -> frozenset[str]:
    """Values of secret-named environment variables, scanned again only when the environment
    changed: scanning decodes every variable (~1 us each, per scrubbed row), while comparing
    os's raw dict with a copy of it is a fraction of a microsecond and sees any change."""
    global _scanned
    raw = getattr(os.environ, "_data", None)  # the variables as os keeps them (CPython)
    seen, found = _scanned
    if raw is not None and raw == seen:
        return found
    found = frozenset(
        value
        for name, value in os.environ.items()
        if len(value) >= MIN_KEY and _SECRET_NAME.search(name)
    )
    _scanned = (dict(raw) if raw is not None else None, found)
    return found


def scrub_text(text: str, secrets: set[str] | None = None) -> str:
    """``text`` without any known key, echoed key prefix or key-shaped token."""
    if not text:
        return text
    for key in known_secrets() if secrets is None else secrets:
        if key[:MIN_ECHO] in text:
            text = _without_prefixes(text, key)
    return _KEY_SHAPED.sub(REDACTED, text)


def _without_prefixes(text: str, key: str) -> str:
    """Replace every run of text that matches the start of ``key`` for MIN_ECHO characters."""
    head = key[:MIN_ECHO]
    start = text.find(head)
    while start != -1:
        end = start + MIN_ECHO
        while end < len(text) and end - start < len(key) and text[end] == key[end - start]:
            end += 1
        while end < len(text) and text[end] == "*":  # the server's own mask
            end += 1
        text = text[:start] + REDACTED + text[end:]
        start = text.find(head, start + len(REDACTED))
    return text


def scrub(value: Any, secrets: set[str] | None = None) -> Any:
    """A copy of JSON-like data with every string scrubbed (dict keys included)."""
    if secrets is None:
        secrets = known_secrets()
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {
            scrub_text(k, secrets) if isinstance(k, str) else k: scrub(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item, secrets) for item in value]
    return value
