"""One model served by several endpoints (replicas): least-loaded routing, failing ones set aside.

Each replica is an `OpenAIModel` with its own limits (concurrency, RPM, TPM per endpoint); the
replica set adds the model-wide limits. A request goes to the available endpoint with the fewest
requests in flight. An endpoint that refuses connections or keeps answering 5xx is set aside for
a while and tried again later; the request moves to another endpoint. The model's settings (the
response-cache key) leave the URLs out: whichever replica answered, the answer is the same
model's.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masksql_pipe.errors import ModelError
from masksql_pipe.lm.base import Completion, Messages, Model, estimate_tokens, messages_text
from masksql_pipe.lm.limits import CallLimits
from masksql_pipe.lm.openai_model import ModelRejected, ModelUnreachable, OpenAIModel

if TYPE_CHECKING:
    from masksql_pipe.lm.model_entries import EndpointEntry

FAILURES_TO_SET_ASIDE = 2
"""Consecutive failed requests after which an endpoint is set aside."""

SET_ASIDE_SECONDS = 30.0
"""How long a failing endpoint is left alone before it is tried again."""


@dataclass
class Endpoint:
    """One replica and its health: requests in flight, consecutive failures, set aside until."""

    model: OpenAIModel
    in_flight: int = 0
    failures: int = 0
    set_aside_until: float = 0.0
    requests: int = 0
    set_aside_count: int = 0

    @property
    def url(self) -> str:
        return self.model.base_url

    def available(self, now: float) -> bool:
        return now >= self.set_aside_until


class ReplicaModel(Model):
    """A chat model behind several OpenAI-compatible endpoints that serve the same weights."""

    offline = False
    price: Any = None
    """The model's price table (set by the registry from the models file)."""
    batch: Any = None
    """Batch settings when the model is sent through a batch API (its first endpoint)."""

    def __init__(
        self,
        name: str,
        replicas: list[OpenAIModel],
        *,
        limits: CallLimits | None = None,
        max_attempts: int | None = None,
        set_aside_seconds: float = SET_ASIDE_SECONDS,
        failures_to_set_aside: int = FAILURES_TO_SET_ASIDE,
    ) -> None:
        if not replicas:
            raise ValueError("a replica set needs at least one endpoint")
        self.name = name
        self.endpoints = [Endpoint(model) for model in replicas]
        self.model = replicas[0].model
        self.limits = limits or CallLimits()
        self.max_attempts = max_attempts or max(3, 2 * len(replicas))
        self.set_aside_seconds = set_aside_seconds
        self.failures_to_set_aside = failures_to_set_aside

    @property
    def base_url(self) -> str:
        """The endpoints, for messages (not part of the settings)."""
        return ", ".join(endpoint.url for endpoint in self.endpoints)

    def settings(self) -> dict[str, Any]:
        """Model id and sampling settings; no URL, so any replica's answer is the same key."""
        return _without_url(self.endpoints[0].model.settings())

    def call_settings(self, **options: Any) -> dict[str, Any]:
        """Like `settings()`, for a call with a stage's defaults."""
        inner = self.endpoints[0].model
        method = getattr(inner, "call_settings", None)
        return _without_url(method(**options) if method else inner.settings())

    def pick(self) -> Endpoint | None:
        """The available endpoint with the fewest requests in flight (None: all set aside)."""
        now = time.monotonic()
        ready = [e for e in self.endpoints if e.available(now)]
        if not ready:
            return None
        least = min(e.in_flight for e in ready)
        return random.choice([e for e in ready if e.in_flight == least])

    def _failed(self, endpoint: Endpoint) -> None:
        endpoint.failures += 1
        if endpoint.failures >= self.failures_to_set_aside:
            endpoint.set_aside_until = time.monotonic() + self.set_aside_seconds
            endpoint.set_aside_count += 1
            endpoint.failures = 0

    async def complete(self, messages: Messages, **options: Any) -> Completion:
        """Answer through the least-loaded endpoint, moving to another when one fails."""
        budget = estimate_tokens(messages_text(messages))
        async with self.limits.slot(budget):
            last: ModelError | None = None
            for attempt in range(self.max_attempts):
                endpoint = self.pick()
                if endpoint is None:
                    wake = min(e.set_aside_until for e in self.endpoints)
                    await asyncio.sleep(max(0.0, min(wake - time.monotonic(), 1.0)))
                    endpoint = self.pick()
                    if endpoint is None:
                        continue
                endpoint.in_flight += 1
                endpoint.requests += 1
                try:
                    completion = await endpoint.model.complete(messages, **options)
                except ModelRejected:
                    raise
                except ModelError as exc:
                    status = getattr(exc, "status", None)
                    if status is not None and 400 <= status < 500 and status not in (408, 429):
                        raise  # the request itself was refused: another replica won't help
                    self._failed(endpoint)
                    last = exc
                    continue
                finally:
                    endpoint.in_flight -= 1
                endpoint.failures = 0
                if attempt:
                    completion.retries += attempt
                return completion
        down = [e.url for e in self.endpoints if not e.available(time.monotonic())]
        message = (
            f"model {self.name!r}: no endpoint answered after {self.max_attempts} attempts "
            f"(set aside: {', '.join(down) or 'none'}; last error: {last})"
        )
        if len(down) == len(self.endpoints):
            raise ModelUnreachable(message)
        raise ModelError(message)

    def stats(self) -> list[dict[str, Any]]:
        """Per endpoint: requests sent and how often it was set aside."""
        return [
            {"url": e.url, "requests": e.requests, "set_aside": e.set_aside_count}
            for e in self.endpoints
        ]

    async def aclose(self) -> None:
        """Release every replica's clients."""
        for endpoint in self.endpoints:
            await endpoint.model.aclose()

    def __repr__(self) -> str:
        return f"<ReplicaModel {self.name!r} {self.model} at {self.base_url}>"


def _without_url(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "base_url"}


def replica_set(
    template: OpenAIModel,
    endpoints: list[EndpointEntry],
    limits: CallLimits,
    default_concurrency: Callable[[str], int | None],
) -> ReplicaModel:
    """A replica set built from `template` (key, model id, sampling, timeout) with one
    `OpenAIModel` per endpoint, each with its own limits and a single retry of its own (the set
    moves a failing request to another endpoint instead of waiting on a dead one)."""
    replicas = []
    for endpoint in endpoints:
        replica = copy.copy(template)
        replica.base_url = endpoint.url
        replica.limits = CallLimits(
            endpoint.max_concurrency or default_concurrency(endpoint.url),
            endpoint.rpm,
            endpoint.tpm,
        )
        replica.max_retries = min(template.max_retries, 1)
        replica._clients = {}  # a fresh copy must not share the template's client
        replicas.append(replica)
    return ReplicaModel(
        template.name,
        replicas,
        limits=limits,
        max_attempts=max(template.max_retries, 2 * len(replicas)),
    )
