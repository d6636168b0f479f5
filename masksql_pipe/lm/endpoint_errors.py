"""How a chat request to an endpoint failed, in the project's own terms (no `openai` import).

The lean sender raises these; the openai client's exceptions are translated into them where that
client is used, so `OpenAIModel` turns one set of failures into its error messages. They never
reach the user: the model maps each to a `ModelError` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class EndpointError(Exception):
    """A chat request failed for good (after the sender's retries)."""


class EndpointStatusError(EndpointError):
    """The endpoint answered an error status: `status`, its `headers`, the decoded `body`
    (JSON when it parses, else text) and a one-line `message`."""

    def __init__(self, message: str, *, status: int, headers: Mapping[str, str], body: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = dict(headers)
        self.body = body


class EndpointTimeout(EndpointError):
    """No answer within the request's timeout."""


class EndpointUnreachable(EndpointError):
    """The connection failed (refused, reset, DNS)."""
