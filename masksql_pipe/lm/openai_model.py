"""OpenAI-compatible chat models through the real `openai` package, one shared client per endpoint.

The client does the retrying (exponential back-off with jitter, Retry-After honoured; 408, 409,
429, 5xx, timeouts and connection errors) and the timeouts. Requests go through the client's
generic `post` (same retries, auth and timeouts, no TypedDict transform) and replies are parsed
with orjson, skipping the pydantic models; the aiohttp transport is used. Each measured faster
(see benchmarks/bench_models.py).

By default chat requests go through the lean sender (`lm.direct`) instead, and `openai` is
imported only where a client is built (the "openai" client setting, the batch and files API):
importing it costs 0.7-0.9 s a process. Both paths fail with `lm.endpoint_errors`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from masksql_pipe.engine.scrub import register_secret, scrub_text
from masksql_pipe.errors import ConfigError, ModelError, StageFatal
from masksql_pipe.lm.base import Completion, Messages, Model, estimate_tokens, messages_text
from masksql_pipe.lm.direct import DirectChat
from masksql_pipe.lm.endpoint_defaults import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from masksql_pipe.lm.endpoint_errors import (
    EndpointStatusError,
    EndpointTimeout,
    EndpointUnreachable,
)
from masksql_pipe.lm.limits import CallLimits
from masksql_pipe.lm.pricing import cached_tokens
from masksql_pipe.lm.request_fields import check_structured, effective_sampling, response_format

if TYPE_CHECKING:
    import openai


class ModelRejected(ModelError, StageFatal):
    """The endpoint refused the model or the key (401/403/404): retrying or other rows won't help,
    so it stops the stage rather than failing one row."""


class ModelUnreachable(ModelError, StageFatal):
    """The endpoint refused connections through every retry: it is down for all rows alike.

    It stops the stage (rows already finished are kept) instead of letting every other row
    spend the same minute of retries before failing the same way.
    """


class ClientPool:
    """One `AsyncOpenAI` client per (endpoint, key, event loop), reusing its connections.

    Clients are made lazily inside the running loop (an HTTP session belongs to one loop).
    """

    def __init__(self, *, transport: str = "aiohttp") -> None:
        if transport not in ("aiohttp", "httpx"):
            raise ValueError("transport must be 'aiohttp' or 'httpx'")
        self.transport = transport
        self._clients: dict[tuple[str, str, int], openai.AsyncOpenAI] = {}
        self._direct: dict[tuple[str, str, int], DirectChat] = {}

    def direct(self, base_url: str, api_key: str) -> DirectChat:
        """The shared lean chat sender for this endpoint and key in the running loop."""
        loop = asyncio.get_running_loop()
        slot = (base_url, hashlib.sha256(api_key.encode()).hexdigest(), id(loop))
        sender = self._direct.get(slot)
        if sender is None:
            sender = self._direct[slot] = DirectChat(base_url, api_key)
        return sender

    def client(self, base_url: str, api_key: str) -> openai.AsyncOpenAI:
        """The shared client for this endpoint and key in the running loop."""
        loop = asyncio.get_running_loop()
        key_id = hashlib.sha256(api_key.encode()).hexdigest()
        slot = (base_url, key_id, id(loop))
        client = self._clients.get(slot)
        if client is None:
            import openai  # here only: the default sender and offline models never need it

            http_client = openai.DefaultAioHttpClient() if self.transport == "aiohttp" else None
            client = openai.AsyncOpenAI(
                api_key=api_key,
                base_url=base_url,
                http_client=http_client,
                max_retries=DEFAULT_MAX_RETRIES,
                timeout=DEFAULT_TIMEOUT,
            )
            self._clients[slot] = client
        return client

    async def aclose(self) -> None:
        """Close the clients of the running loop; forget those of loops that are gone."""
        loop_id = id(asyncio.get_running_loop())
        clients, self._clients = self._clients, {}
        for (_, _, owner), client in clients.items():
            if owner == loop_id:
                await client.close()
        senders, self._direct = self._direct, {}
        for (_, _, owner), sender in senders.items():
            if owner == loop_id:
                await sender.aclose()


class OpenAIModel(Model):
    """A chat model on an OpenAI-compatible endpoint, with limits, timeout and retries."""

    offline = False

    def __init__(
        self,
        name: str,
        *,
        model: str,
        base_url: str,
        api_key: str,
        api_key_env: str = "OPENAI_API_KEY",
        sampling: dict[str, Any] | None = None,
        limits: CallLimits | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        pool: ClientPool | None = None,
        raw: bool = True,
        direct: bool = True,
        unusable: ModelError | ConfigError | None = None,
        structured: str | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        register_secret(api_key)  # its echoes are scrubbed wherever text is written
        self.api_key_env = api_key_env
        self.sampling = effective_sampling(sampling)
        self.structured = check_structured(structured, f"model {name!r}")
        """How this endpoint takes an answer's JSON schema (None: it is not sent)."""
        self.limits = limits or CallLimits()
        self.timeout = timeout
        self.max_retries = max_retries
        self._pool = pool or ClientPool()
        self._owns_pool = pool is None
        self._raw = raw
        self._direct = direct
        """Chat requests over `DirectChat` (the client's retry rules, a fraction of its CPU);
        False: through the openai client (`raw`: its generic post, else its typed method)."""
        self._clients: dict[int, openai.AsyncOpenAI] = {}
        self._rejected: ModelRejected | None = None
        self._unusable = unusable
        """Why this model may be described but not called (e.g. no key, in `status`)."""

    def settings(self) -> dict[str, Any]:
        """Model id, endpoint and sampling settings (never the key)."""
        described = {"model": self.model, "base_url": self.base_url, **self.sampling}
        if self.structured is not None:
            described["structured"] = self.structured
        return described

    def with_sampling(self, settings: Mapping[str, Any]) -> OpenAIModel:
        """A copy sending ``settings`` over the configured sampling (same client and limits)."""
        clone = copy.copy(self)
        clone.sampling = effective_sampling({**self.sampling, **settings})
        return clone

    def call_settings(
        self, *, max_tokens: int | None = None, schema: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Model id, endpoint and every request field besides the messages (the cache key)."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            **self._request_fields(max_tokens, schema),
        }

    def _request_fields(
        self, max_tokens: int | None, schema: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Sampling settings, the reply budget (the model's own, else the stage's) and the
        answer's schema in this endpoint's form."""
        fields = dict(self.sampling)
        budget_set = "max_tokens" in fields or "max_completion_tokens" in fields
        if max_tokens is not None and not budget_set:
            fields["max_tokens"] = max_tokens
        form = response_format(self.structured, schema)
        if form is not None:
            fields["response_format"] = form
        return fields

    def request_body(
        self,
        messages: Messages,
        *,
        max_tokens: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The chat request this model sends for `messages` (a batch file's line body)."""
        return {
            "model": self.model,
            "messages": messages,
            **self._request_fields(max_tokens, schema),
        }

    def batch_client(self) -> openai.AsyncOpenAI:
        """The endpoint's client, for its files and batches API (batch mode)."""
        if self._unusable is not None:
            raise self._unusable
        return self._client()

    def _client(self) -> openai.AsyncOpenAI:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            shared = self._pool.client(self.base_url, self._api_key)
            client = shared.with_options(timeout=self.timeout, max_retries=self.max_retries)
            self._clients = {loop_id: client}
        return client

    async def complete(
        self,
        messages: Messages,
        *,
        oracle: str | None = None,
        max_tokens: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        """Send one chat request (retried by the client); ModelError when it fails for good.

        `latency` is measured from when the call may go out; the time spent waiting for a
        concurrency slot or a rate limit before that is `wait`.
        """
        if self._unusable is not None:
            raise self._unusable
        if self._rejected is not None:
            raise self._rejected
        fields = self._request_fields(max_tokens, schema)
        budget = estimate_tokens(messages_text(messages)) + int(
            fields.get("max_tokens") or fields.get("max_completion_tokens") or 0
        )
        queued = time.perf_counter()
        async with self.limits.slot(budget):
            start = time.perf_counter()
            retries = 0
            spent = [0, 0]  # tokens the endpoint reported inside unreadable replies
            for attempt in range(self.max_retries + 1):
                try:
                    text, usage, taken, finish = await self._send(messages, fields)
                except _MalformedReply as exc:
                    retries += exc.retries_taken
                    spent = [a + b for a, b in zip(spent, exc.tokens, strict=True)]
                    if attempt < self.max_retries:
                        retries += 1
                        continue
                    error = ModelError(
                        f"model {self.name!r}: {self.base_url} kept sending unreadable replies "
                        f"({exc}) after {self.max_retries} retries"
                    )
                    error.prompt_tokens, error.completion_tokens = spent  # type: ignore[attr-defined]
                    raise error from None
                retries += taken
                break
            latency = time.perf_counter() - start
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        return Completion(
            text=text,
            prompt_tokens=spent[0]
            + int(
                prompt_tokens
                if prompt_tokens is not None
                else estimate_tokens(messages_text(messages))
            ),
            completion_tokens=spent[1]
            + int(completion_tokens if completion_tokens is not None else estimate_tokens(text)),
            latency=latency,
            retries=retries,
            finish_reason=finish,
            wait=start - queued,
            cached_tokens=cached_tokens(usage),
        )

    async def _send(
        self, messages: Messages, fields: dict[str, Any]
    ) -> tuple[str, dict[str, Any], int, str | None]:
        """One request as the client sends it (with its retries): (text, usage, retries taken,
        finish reason)."""
        try:
            if self._direct:
                sender = self._pool.direct(self.base_url, self._api_key)
                body = {"model": self.model, "messages": messages, **fields}
                content, taken = await sender.post(body, self.timeout, self.max_retries)
                return _read_raw(content, taken)
            return await self._send_by_client(messages, fields)
        except EndpointStatusError as exc:
            raise self._status_error(exc) from None
        except EndpointTimeout:
            raise ModelError(
                f"model {self.name!r}: no answer from {self.base_url} within {self.timeout:g}s, "
                f"after {self.max_retries} retries (raise 'timeout' in the model config)"
            ) from None
        except EndpointUnreachable:
            raise self._unreachable() from None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _MalformedReply(str(exc), 0) from None

    async def _send_by_client(
        self, messages: Messages, fields: dict[str, Any]
    ) -> tuple[str, dict[str, Any], int, str | None]:
        """`_send` through the openai client; its failures become `lm.endpoint_errors`."""
        import httpx2
        import openai

        client = self._client()
        try:
            if self._raw:
                # the client's own request path (retries, timeouts, auth) without the
                # TypedDict transform and pydantic models: measured ~15% faster at 100 in flight
                response = await client.post(
                    "/chat/completions",
                    body={"model": self.model, "messages": messages, **fields},
                    cast_to=httpx2.Response,
                )
                taken = response.request.headers.get("x-stainless-retry-count", "0")
                return _read_raw(response.content, int(taken) if taken.isdigit() else 0)
            parsed = await client.chat.completions.create(
                model=self.model, messages=messages, **fields
            )
            usage = parsed.usage.model_dump() if parsed.usage else {}
            choice = parsed.choices[0]
            return choice.message.content or "", usage, 0, choice.finish_reason
        except openai.APIStatusError as exc:
            raise EndpointStatusError(
                exc.message,
                status=exc.status_code,
                headers=exc.response.headers,
                body=exc.body,
            ) from None
        except openai.APITimeoutError as exc:
            if _refused(exc):
                raise EndpointUnreachable(str(exc)) from None
            raise EndpointTimeout(str(exc)) from None
        except openai.APIConnectionError as exc:
            raise EndpointUnreachable(str(exc)) from None

    def _unreachable(self) -> ModelError:
        return ModelUnreachable(
            f"model {self.name!r}: cannot connect to {self.base_url} after "
            f"{self.max_retries} retries (check base_url and that the server is up)"
        )

    def _status_error(self, exc: EndpointStatusError) -> ModelError:
        error = self._status_error_for(exc)
        error.status = exc.status  # type: ignore[attr-defined] # replica sets read it
        return error

    def _status_error_for(self, exc: EndpointStatusError) -> ModelError:
        status = exc.status
        detail = self._scrub(_error_message(exc))
        where = f"model {self.name!r} ({self.model} at {self.base_url})"
        if status == 401:
            error = ModelRejected(
                f"{where}: HTTP 401, the API key was refused; check ${self.api_key_env} "
                "(environment or .env) or 'api_key_env' in the model config"
                if self.api_key_env
                else f"{where}: HTTP 401, the endpoint wants a key; name the variable holding "
                "it with 'api_key_env' in the model config"
            )
        elif status == 403:
            error = ModelRejected(
                f"{where}: HTTP 403, the key in ${self.api_key_env} may not use this model; "
                "check the key's project and permissions"
            )
        elif status == 404:
            error = ModelRejected(
                f"{where}: HTTP 404, model or endpoint not found; check the 'model' id and "
                "'base_url' in the model config (or OPENAI_BASE_URL)"
            )
        elif 400 <= status < 500 and status not in (408, 409, 429):
            return ModelError(
                f"{where}: HTTP {status}, request rejected ({detail}); check the prompt and the "
                "sampling 'settings' in the model config"
            )
        else:
            return ModelError(
                f"{where}: HTTP {status} ({detail}), still failing after {self.max_retries} retries"
            )
        self._rejected = error
        return error

    def _scrub(self, text: str) -> str:
        """Remove the key (and any long prefix of it) from a server message; keep one short line."""
        text = " ".join(text.split())[:200]
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return scrub_text(text)

    async def aclose(self) -> None:
        """Close the clients when this model owns its pool (the registry closes shared pools)."""
        self._clients = {}
        if self._owns_pool:
            await self._pool.aclose()

    def __repr__(self) -> str:
        return f"<OpenAIModel {self.name!r} {self.model} at {self.base_url}>"


class _MalformedReply(Exception):
    """A 200 reply that is not chat.completion JSON (worth retrying); `tokens` are the
    (prompt, completion) tokens its `usage` reported all the same (billed, so counted)."""

    def __init__(self, message: str, retries_taken: int, tokens: tuple[int, int] = (0, 0)) -> None:
        super().__init__(message)
        self.retries_taken = retries_taken
        self.tokens = tokens


def _reported_tokens(data: Any) -> tuple[int, int]:
    """(prompt, completion) tokens in the `usage` of a reply body, (0, 0) when there are none."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    counts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    a, b = (
        int(c) if isinstance(c, int) and not isinstance(c, bool) and c > 0 else 0 for c in counts
    )
    return a, b


def _refused(exc: BaseException) -> bool:
    """True when a "timeout" was really a refused connection (the aiohttp transport maps
    every connection failure to ConnectTimeout)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ConnectionError) or isinstance(
            getattr(seen, "os_error", None), ConnectionError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _read_raw(body: bytes, retries_taken: int) -> tuple[str, dict[str, Any], int, str | None]:
    data: Any = None
    try:
        data = orjson.loads(body)
        choice = data["choices"][0]
        text = choice["message"]["content"]
        finish = choice.get("finish_reason")
        usage = data.get("usage") or {}
        if not isinstance(text, str | None):
            raise TypeError(f"message content is {type(text).__name__}, not text")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        reason = scrub_text(f"{type(exc).__name__}: {exc}")[:200]
        raise _MalformedReply(reason, retries_taken, _reported_tokens(data)) from None
    if not isinstance(usage, dict):
        usage = {}
    return text or "", usage, retries_taken, finish if isinstance(finish, str) else None


def _error_message(exc: EndpointStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return exc.message or type(exc).__name__
