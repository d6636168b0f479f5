"""The one small interface every language model implements, and what a call returns."""

from __future__ import annotations

import contextvars
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from masksql_pipe.engine.scrub import scrub_text

Messages = list[dict[str, str]]


@dataclass
class Completion:
    """One model answer with what it cost: tokens, seconds, retries, and whether it was cached.

    `latency` is the service time of the call; `wait` is the time spent before it could be sent
    (a concurrency slot, a rate limit). `finish_reason` is the endpoint's ("stop", "length", ...).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency: float
    retries: int = 0
    cached: bool = False
    finish_reason: str | None = None
    wait: float = 0.0
    cached_tokens: int = 0
    """Prompt tokens the provider served from its prompt cache (billed at the cached rate)."""
    batch: bool = False
    """Answered through a provider batch API (billed at the batch discount)."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def scrubbed(self) -> Completion:
        """This answer with any key the model echoed replaced by `***` (itself when clean):
        what callers keep, cache, log or send back in a retry prompt."""
        text = scrub_text(self.text)
        return self if text == self.text else replace(self, text=text)


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token): no tokenizer tables to download at run time."""
    return len(text) // 4


def messages_text(messages: Messages) -> str:
    """All message contents joined, for token estimates."""
    return "".join(str(m.get("content", "")) for m in messages)


def last_user_message(messages: Messages) -> str:
    """The content of the last user message ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class Model(ABC):
    """A chat model: `complete(messages)` answers; `settings()` names what changes answers.

    `settings()` feeds the stage fingerprint and the response-cache key: it never holds a key.
    """

    name: str
    offline: bool = False
    uses_oracle: bool = False
    """True when answers draw on the stage's oracle text (so the stage computes it)."""
    needs_oracle: bool = False
    """True when the model cannot answer without an oracle text (stage must define `_oracle`)."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Model id, endpoint and sampling settings (JSON-able; never the API key)."""

    @abstractmethod
    async def complete(
        self,
        messages: Messages,
        *,
        oracle: str | None = None,
        max_tokens: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        """Answer the chat `messages`; `oracle` is the text a perfect model would give, if known.

        `max_tokens` is the calling stage's default reply budget and `schema` the JSON schema of
        its answer: a model sends them as its configuration says, or ignores them.
        """

    def call_settings(
        self, *, max_tokens: int | None = None, schema: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Everything a call with these stage defaults depends on (the response-cache key);
        `settings()` for a model that ignores them."""
        return self.settings()

    def with_sampling(self, settings: Mapping[str, Any]) -> Model:
        """This model with ``settings`` (temperature, top_p ...) over its own; a model that
        samples nothing (the offline ones) ignores them."""
        return self

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the default has nothing to release."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


Caller = Callable[..., Awaitable[Completion]]
"""``caller(model, messages, **kwargs)``: how the running stage makes a model call (its cache,
retries, prompt log and the row's token and latency totals)."""

current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "current_caller", default=None
)
"""Set by a function stage around each row, so `InferModel.infer` needs no context argument."""


def stage_settings(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The calling stage's sampling settings from the run's configuration, GoTaglio's layout:
    ``<stage>.model.settings`` (``{}`` when the configuration has none)."""
    metadata = context.get("metadata") if isinstance(context, Mapping) else None
    if not isinstance(metadata, Mapping):
        return {}
    config, stage = metadata.get("config"), metadata.get("stage")
    found: Any = config
    for key in (stage, "model", "settings"):
        found = found.get(key) if isinstance(found, Mapping) and isinstance(key, str) else None
    return dict(found) if isinstance(found, Mapping) else {}


class InferModel:
    """GoTaglio's model interface over one of ours: ``await model.infer(messages, context)``
    returns the reply text; ``metadata()`` describes the model (what `registry.model` returns).

    The calling stage's ``<stage>.model.settings`` in the run's configuration (the context's
    ``metadata.config``) are sent with the call, over the model's own sampling settings.
    Each call goes through the running stage (``context["complete"]``, else the row's
    `current_caller`), so it is cached, rate limited, retried, prompt-logged and added to the
    case's totals like any other call. `oracle` is what the offline oracle models answer.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.name = model.name

    async def infer(
        self,
        messages: Messages,
        context: Mapping[str, Any] | None = None,
        *,
        oracle: str | None = None,
        max_tokens: int | None = None,
    ) -> str:
        """The model's reply to ``messages``, as text."""
        caller = context.get("complete") if isinstance(context, Mapping) else None
        caller = caller or current_caller.get()
        kwargs: dict[str, Any] = {"oracle": oracle}
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        settings = stage_settings(context)
        model = self.model.with_sampling(settings) if settings else self.model
        if caller is None:  # outside any stage: a plain call, nothing to account it to
            completion = await model.complete(messages, **kwargs)
        else:
            completion = await caller(model, messages, **kwargs)
        return completion.text

    def metadata(self) -> dict[str, Any]:
        """The model's name and settings (never a key), as run logs and fingerprints hold them."""
        return {"name": self.model.name, **self.model.settings()}

    def __repr__(self) -> str:
        return f"<InferModel {self.model.name!r}>"
