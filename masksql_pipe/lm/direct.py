"""Chat requests straight over aiohttp, with the openai client's retry rules, for throughput.

The openai client spends about 1 ms of CPU per request building and validating it (URL parsing,
option models, header merging): at 100 requests in flight that, not the network, set the pace
(benchmarks/bench_models.py). This sender posts the same JSON with the same authorization and
follows the same rules: retry 408, 409, 429, 5xx, timeouts and refused connections with
exponential back-off (0.5 s doubling, at most 8 s, up to 25% jitter), honour `Retry-After` /
`retry-after-ms` up to 60 s and `x-should-retry`. Failures come back as the project's own
`lm.endpoint_errors`, so this path never imports `openai` (0.7-0.9 s a process). The files and
batches API still go through the openai client (rare calls).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from typing import Any

import aiohttp
import orjson

from masksql_pipe.lm.endpoint_errors import (
    EndpointStatusError,
    EndpointTimeout,
    EndpointUnreachable,
)

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0


class DirectChat:
    """One aiohttp session for one endpoint and key (in one event loop)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def post(
        self, body: dict[str, Any], timeout: float, max_retries: int
    ) -> tuple[bytes, int]:
        """POST `body`; (response bytes of a 2xx, retries taken), else an `EndpointError`."""
        session = self._open()
        data = orjson.dumps(body)
        limit = aiohttp.ClientTimeout(total=timeout)
        retries = 0
        while True:
            try:
                async with session.post(self.url, data=data, timeout=limit) as response:
                    payload = await response.read()
                    if response.status < 300:
                        return payload, retries
                    retry, wait = _retry_rule(response.status, response.headers)
                    if not retry or retries >= max_retries:
                        raise _status_error(response.status, response.headers, payload)
            except (TimeoutError, aiohttp.ServerTimeoutError):
                if retries >= max_retries:
                    raise EndpointTimeout(f"{self.url}: request timed out") from None
                wait = None
            except aiohttp.ClientError as exc:
                if retries >= max_retries:
                    error = EndpointUnreachable(f"{self.url}: connection error")
                    raise error from getattr(exc, "os_error", exc)
                wait = None
            await asyncio.sleep(_delay(retries, wait))
            retries += 1

    async def aclose(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_rule(status: int, headers: Any) -> tuple[bool, float | None]:
    """(retry?, server-requested wait) as the openai client decides them."""
    should = headers.get("x-should-retry")
    if should == "true":
        retry = True
    elif should == "false":
        retry = False
    else:
        retry = status in (408, 409, 429) or status >= 500
    return retry, _retry_after(headers)


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), if sane."""
    value: float | None = None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = None
    text = headers.get("retry-after")
    if value is None and text is not None:
        try:
            value = float(text)
        except ValueError:
            parsed = email.utils.parsedate_tz(text)
            if parsed is not None:
                value = email.utils.mktime_tz(parsed) - time.time()
    if value is not None and 0 < value <= MAX_RETRY_AFTER:
        return value
    return None


def _delay(retries: int, wait: float | None) -> float:
    if wait is not None:
        return wait
    delay = min(INITIAL_DELAY * 2**retries, MAX_DELAY)
    return delay * (1 - 0.25 * random.random())


def _status_error(status: int, headers: Any, payload: bytes) -> EndpointStatusError:
    """The failure for an error status, worded as the openai client words it."""
    try:
        body: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = payload.decode("utf-8", "replace")
    return EndpointStatusError(
        f"Error code: {status} - {body}", status=status, headers=headers, body=body
    )
