"""The lean chat sender keeps the openai client's retry rules (on the loopback server)."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from masksql_pipe.errors import ModelError
from masksql_pipe.lm.direct import _delay, _retry_after, _retry_rule
from masksql_pipe.lm.openai_model import ModelRejected, OpenAIModel
from masksql_pipe.loopback.server import LoopbackServer
from tests.lm_fixtures import SECRET

HI = [{"role": "user", "content": "hi"}]


def ask(srv: LoopbackServer, max_retries: int = 3) -> object:
    model = OpenAIModel(
        "m", model="m", base_url=srv.base_url, api_key=SECRET, max_retries=max_retries, timeout=2
    )

    async def go() -> object:
        try:
            return await model.complete(HI)
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_server_waits_are_honoured_and_sane_ones_only() -> None:
    assert _retry_after({"retry-after": "0.05"}) == 0.05
    assert _retry_after({"retry-after-ms": "250"}) == 0.25
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 < (_retry_after({"retry-after": later}) or 0) <= 5
    assert _retry_after({"retry-after": "600"}) is None  # past 60 s: back-off instead
    assert _retry_after({}) is None
    assert _delay(0, 0.05) == 0.05
    assert 0.375 <= _delay(0, None) <= 0.5 and 6 <= _delay(10, None) <= 8


def test_which_statuses_are_retried() -> None:
    assert [s for s in (400, 401, 404, 408, 409, 422, 429, 500, 503) if _retry_rule(s, {})[0]] == [
        408,
        409,
        429,
        500,
        503,
    ]
    assert _retry_rule(500, {"x-should-retry": "false"})[0] is False
    assert _retry_rule(400, {"x-should-retry": "true"})[0] is True


def test_429_and_500_are_retried_and_counted() -> None:
    with LoopbackServer(faults=["429", "500", "ok"], retry_after=0.01) as srv:
        started = time.monotonic()
        completion = ask(srv)
        elapsed = time.monotonic() - started
        assert srv.requests == 3
    assert completion.retries == 2 and completion.text == "hi"  # type: ignore[attr-defined]
    assert elapsed < 5


def test_a_refused_key_is_not_retried() -> None:
    with LoopbackServer(faults=["401"]) as srv:
        with pytest.raises(ModelRejected, match="401"):
            ask(srv)
        assert srv.requests == 1


def test_retries_run_out() -> None:
    with LoopbackServer(faults=["500"] * 5, retry_after=0.01) as srv:
        with pytest.raises(ModelError, match="HTTP 500"):
            ask(srv, max_retries=1)
        assert srv.requests == 2
