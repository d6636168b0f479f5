"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks (no network, no key).

`LoopbackServer` answers `/v1/chat/completions` with proper `chat.completion` JSON and usage,
after a configurable latency, with pluggable replies (a function, or one fixed text for every
request) and injected faults (429 with Retry-After, 500, a hang past the client timeout, a
malformed body, 401, a reply cut off with `finish_reason: "length"`). It honours `max_tokens`
(a longer reply is cut off as a real server would), checks each `response_format` it receives
(refusing the forms it is told not to accept) and counts and records what it received.
Run it in a thread (`with LoopbackServer() as server:`) or as a process:
`python -m masksql_pipe.loopback.server --port 0 --latency 0.05` prints its base URL on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

Reply = Callable[[list[dict[str, Any]]], str]
BodyReply = Callable[[dict[str, Any]], str]
"""A reply computed from the whole request body (messages, response_format, max_tokens...)."""

FAULTS = ("429", "500", "hang", "malformed", "401", "403", "length", "unreadable")
"""Fault names; "ok" (or None) in a schedule means answer normally. "length" sends the first
half of the reply with `finish_reason: "length"`; "unreadable" a JSON body with no choices
whose `usage` still reports the tokens (billed all the same)."""

RESPONSE_FORMS = ("text", "json_object", "json_schema")
"""`response_format` types the server accepts by default (OpenAI's and llama.cpp's forms)."""

RECORDED_BODIES = 1000
"""Request bodies kept for inspection (the most recent ones)."""


def empty_json_reply(body: dict[str, Any]) -> str:
    """A model that finds nothing: `{}` when the request's schema asks for an object, else `[]`.

    The schema is read from `response_format` in either form (OpenAI's or llama.cpp's).
    """
    form = body.get("response_format")
    schema: Any = None
    if isinstance(form, dict):
        inner = form.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, dict) else form.get("schema")
    kind = schema.get("type") if isinstance(schema, dict) else None
    return "{}" if kind == "object" else "[]"


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """Default reply: the last user message."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def fixed_reply(text: str) -> Reply:
    """A reply function answering `text` to every request."""

    def reply(messages: list[dict[str, Any]]) -> str:
        return text

    return reply


def prompt_id(messages: list[dict[str, Any]]) -> str:
    """The identity of a prompt for the counters: its messages as canonical JSON."""
    return orjson.dumps(messages, option=orjson.OPT_SORT_KEYS).decode()


def _estimate(text: str) -> int:
    return len(text) // 4


class LoopbackServer:
    """OpenAI-compatible chat server on 127.0.0.1 in a background thread with its own loop.

    Faults come from `faults` (a schedule: the n-th request gets `faults[n]`, "ok" or None for
    a normal answer) or else from `fault_rate`: a seeded draw per (prompt, attempt) picks one of
    `fault_kinds`, so the same prompt meets the same faults whatever the request order.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        reply: Reply | str | None = None,
        faults: Sequence[str | None] | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = ("429", "500", "hang", "malformed"),
        seed: int = 0,
        retry_after: float = 0.05,
        hang_seconds: float = 30.0,
        api_key: str | None = None,
        response_forms: Sequence[str] = RESPONSE_FORMS,
        body_reply: BodyReply | None = None,
    ) -> None:
        """`reply` is a function of the messages or one text sent for every request (e.g.
        "[]": a model that finds nothing); `body_reply`, when given, answers from the whole
        request body instead (e.g. `empty_json_reply`). `response_forms` lists the
        `response_format` types accepted; another type is refused with HTTP 400, as the
        llama.cpp server refuses OpenAI's `json_schema`."""
        for kind in [*(faults or []), *fault_kinds]:
            if kind not in (*FAULTS, "ok", None):
                raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        self.host = host
        self.port = port
        self.latency = latency
        self.reply: Reply = fixed_reply(reply) if isinstance(reply, str) else reply or echo_reply
        self.response_forms = tuple(response_forms)
        self.body_reply = body_reply
        self._bodies: deque[dict[str, Any]] = deque(maxlen=RECORDED_BODIES)
        self.faults = list(faults) if faults is not None else None
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.seed = seed
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.cached_prompt_tokens = 0
        """Prompt tokens each answer reports as served from a prompt cache (for price tests)."""
        self.api_key = api_key
        self._lock = threading.Lock()
        self._requests = 0
        self._by_prompt: Counter[str] = Counter()
        self._answered: Counter[str] = Counter()
        self._faults_sent: Counter[str] = Counter()
        self._agents: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None

    # ---- counters -------------------------------------------------------------------------
    @property
    def requests(self) -> int:
        """Requests received on the chat endpoint, faults included."""
        with self._lock:
            return self._requests

    def requests_by_prompt(self) -> Counter[str]:
        """Requests received per distinct prompt (key: `prompt_id(messages)`)."""
        with self._lock:
            return Counter(self._by_prompt)

    def answers_by_prompt(self) -> Counter[str]:
        """Successful (200, well-formed) answers sent per distinct prompt."""
        with self._lock:
            return Counter(self._answered)

    @property
    def max_in_flight(self) -> int:
        """The most chat requests this server was handling at one time."""
        with self._lock:
            return self._max_in_flight

    def bodies(self) -> list[dict[str, Any]]:
        """The request bodies received (the latest RECORDED_BODIES), in arrival order."""
        with self._lock:
            return [dict(body) for body in self._bodies]

    def response_formats(self) -> list[Any]:
        """The `response_format` of each recorded request (None where it had none)."""
        return [body.get("response_format") for body in self.bodies()]

    def faults_sent(self) -> Counter[str]:
        """How many of each fault were injected."""
        with self._lock:
            return Counter(self._faults_sent)

    def clients(self) -> Counter[str]:
        """Chat requests by the sending client's name (User-Agent up to its first '/'), e.g.
        ``AsyncOpenAI`` for the openai package, ``Python`` for a bare aiohttp session."""
        with self._lock:
            return Counter(self._agents)

    def stats(self) -> dict[str, Any]:
        """All counters as JSON-able data (also served at GET /_stats)."""
        with self._lock:
            return {
                "requests": self._requests,
                "by_prompt": dict(self._by_prompt),
                "answered": dict(self._answered),
                "faults": dict(self._faults_sent),
                "max_in_flight": self._max_in_flight,
            }

    def reset_counters(self) -> None:
        """Zero every counter (the fault schedule position too)."""
        with self._lock:
            self._requests = 0
            self._by_prompt.clear()
            self._answered.clear()
            self._faults_sent.clear()
            self._agents.clear()
            self._max_in_flight = 0
            self._bodies.clear()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://{self.host}:{self.port}/v1"

    # ---- request handling -----------------------------------------------------------------
    def _pick_fault(self, number: int, pid: str, attempt: int) -> str | None:
        if self.faults is not None:
            fault = self.faults[number] if number < len(self.faults) else None
            return None if fault == "ok" else fault
        if self.fault_rate <= 0 or not self.fault_kinds:
            return None
        digest = hashlib.sha256(f"{self.seed}|{attempt}|{pid}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= self.fault_rate:
            return None
        return self.fault_kinds[int(draw / self.fault_rate * len(self.fault_kinds))]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            return await self._answer(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
            messages = body["messages"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _error(400, "invalid_request_error", "body must be JSON with 'messages'")
        pid = prompt_id(messages)
        with self._lock:
            number = self._requests
            self._requests += 1
            self._bodies.append(body)
            self._agents[request.headers.get("User-Agent", "").partition("/")[0]] += 1
            attempt = self._by_prompt[pid]
            self._by_prompt[pid] += 1
        authorized = self.api_key is None or (
            request.headers.get("Authorization") == f"Bearer {self.api_key}"
        )
        fault = "401" if not authorized else self._pick_fault(number, pid, attempt)
        if fault is not None:
            with self._lock:
                self._faults_sent[fault] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "403":
            return _error(403, "permission_denied", "You are not allowed to use this model.")
        if fault == "401":
            # as OpenAI does: the start of the presented key, masked (a leak to scrub)
            given = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
            shown = f": {given[:8]}****" if given else ""
            return _error(401, "invalid_api_key", f"Incorrect API key provided{shown}.")
        if fault == "429":
            return _error(
                429,
                "rate_limit_exceeded",
                "Rate limit reached.",
                headers={"Retry-After": f"{self.retry_after:g}"},
            )
        if fault == "500":
            return _error(500, "server_error", "The server had an error.")
        if fault == "hang":
            await asyncio.sleep(self.hang_seconds)
        if fault == "malformed":
            return web.Response(
                body=b'{"id": "chatcmpl-broken", "choices": [', content_type="application/json"
            )
        if fault == "unreadable":
            spent = _estimate("".join(str(m.get("content", "")) for m in messages))
            usage = {"prompt_tokens": spent, "completion_tokens": 7, "total_tokens": spent + 7}
            return web.Response(
                body=orjson.dumps({"id": "chatcmpl-empty", "choices": [], "usage": usage}),
                content_type="application/json",
            )
        refusal = self._check_format(body.get("response_format"))
        if refusal is not None:
            return _error(400, "invalid_request_error", refusal)
        text = self.body_reply(body) if self.body_reply is not None else self.reply(messages)
        finish = "stop"
        budget = body.get("max_tokens") or body.get("max_completion_tokens")
        if fault == "length":
            text, finish = text[: len(text) // 2], "length"
        elif isinstance(budget, int) and _estimate(text) > budget:
            text, finish = text[: budget * 4], "length"
        payload = completion_body(
            f"chatcmpl-{next(self._ids)}", body, messages, text, finish, self.cached_prompt_tokens
        )
        with self._lock:
            self._answered[pid] += 1
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    def _check_format(self, form: Any) -> str | None:
        """Why a `response_format` is refused (None: accepted), checked as the real servers do:
        OpenAI's form needs `json_schema.name` and `json_schema.schema`; llama.cpp's
        `json_object` may carry a `schema` object."""
        if form is None:
            return None
        kind = form.get("type") if isinstance(form, dict) else None
        if kind not in self.response_forms:
            accepted = " or ".join(repr(k) for k in self.response_forms)
            return f"response_format.type: input should be {accepted}, got {kind!r}"
        if kind == "json_schema":
            spec = form.get("json_schema")
            if not (
                isinstance(spec, dict)
                and isinstance(spec.get("name"), str)
                and isinstance(spec.get("schema"), dict)
            ):
                return "response_format.json_schema must have a 'name' and a 'schema' object"
        if kind == "json_object" and not isinstance(form.get("schema", {}), dict):
            return "response_format.schema must be a JSON schema object"
        return None

    async def _stats(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.stats()), content_type="application/json")

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/_stats", self._stats)
        return app

    async def serve(self, sock: socket.socket | None = None) -> None:
        """Start serving on the running loop (binds the port; sets `self.port`)."""
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(
            self._app(), access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=1024).start()

    async def shutdown(self) -> None:
        """Stop serving (hanging requests are dropped)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- background thread ----------------------------------------------------------------
    def start(self) -> LoopbackServer:
        """Serve from a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.serve())
                self._stopped = asyncio.Event()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_until_complete(self._stopped.wait())
            loop.run_until_complete(self.shutdown())
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="loopback-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the background server and join its thread (idempotent)."""
        if self._thread is None or self._loop is None or self._stopped is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> LoopbackServer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def main(argv: list[str] | None = None) -> None:
    """Serve in this process until SIGTERM/SIGINT; prints the base URL on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m masksql_pipe.loopback.server", description=__doc__
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default="429,500,hang,malformed", help="kinds for --fault-rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--reply", default=None, help="answer this text to every request")
    parser.add_argument(
        "--empty-json",
        action="store_true",
        help="answer {} or [] as the request's response_format schema asks (finds nothing)",
    )
    args = parser.parse_args(argv)
    server = LoopbackServer(
        port=args.port,
        latency=args.latency,
        fault_rate=args.fault_rate,
        fault_kinds=[k for k in args.faults.split(",") if k],
        seed=args.seed,
        hang_seconds=args.hang_seconds,
        reply=args.reply,
        body_reply=empty_json_reply if args.empty_json else None,
    )

    async def run() -> None:
        await server.serve()
        print(server.base_url, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.shutdown()

    asyncio.run(run())
    sys.exit(0)


def completion_body(
    ident: str,
    body: dict[str, Any],
    messages: list[dict[str, Any]],
    text: str,
    finish: str = "stop",
    cached_tokens: int | None = None,
) -> dict[str, Any]:
    """A chat.completion answer as OpenAI shapes it, tokens estimated at 4 characters each."""
    prompt_tokens = _estimate("".join(str(m.get("content", "")) for m in messages))
    completion_tokens = _estimate(text)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": min(cached_tokens, prompt_tokens)}
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "loopback"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": usage,
    }


if __name__ == "__main__":
    main()
