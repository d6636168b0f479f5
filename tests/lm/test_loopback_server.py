"""The loopback server itself: as a separate process, its counters, and its fault draws."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import orjson

from masksql_pipe.loopback.server import LoopbackServer, prompt_id


def _post(url: str, content: str) -> tuple[int, bytes, dict[str, str]]:
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
    request = urllib.request.Request(
        f"{url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_runs_as_a_process_and_prints_its_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "masksql_pipe.loopback.server", "--port", "0", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        status, body, _ = _post(url, "twelve characters!")
        reply = orjson.loads(body)
        assert status == 200 and reply["object"] == "chat.completion"
        assert reply["choices"][0]["message"] == {
            "role": "assistant",
            "content": "twelve characters!",
            "refusal": None,
        }
        usage = {
            k: reply["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
        assert usage == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
        with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats", timeout=5) as resp:
            stats = orjson.loads(resp.read())
        assert stats["requests"] == 1 and list(stats["answered"].values()) == [1]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_fault_schedule_and_counters() -> None:
    with LoopbackServer(faults=["429", "500", "malformed", "401"], retry_after=0.25) as srv:
        results = [_post(srv.base_url, "same prompt") for _ in range(5)]
        assert [status for status, _, _ in results] == [429, 500, 200, 401, 200]
        assert results[0][2]["Retry-After"] == "0.25"
        assert results[2][1].startswith(b'{"id": "chatcmpl-broken"')
        key = prompt_id([{"role": "user", "content": "same prompt"}])
        assert srv.requests_by_prompt() == {key: 5}
        assert srv.answers_by_prompt() == {key: 1}
        srv.reset_counters()
        assert srv.requests == 0


def test_seeded_fault_fraction_is_stable() -> None:
    def draw(seed: int) -> list[int]:
        with LoopbackServer(fault_rate=0.3, fault_kinds=["500"], seed=seed) as srv:
            return [_post(srv.base_url, f"prompt {i}")[0] for i in range(100)]

    first = draw(3)
    assert first == draw(3)  # same seed, same faults for the same prompts
    assert first != draw(4)
    assert 15 <= first.count(500) <= 45


def test_a_fixed_reply_from_the_command_line_answers_every_request() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "masksql_pipe.loopback.server", "--port", "0", "--reply", "[]"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        for prompt in ("find the values", "something else entirely"):
            status, body, _ = _post(url, prompt)
            assert status == 200
            assert orjson.loads(body)["choices"][0]["message"]["content"] == "[]"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
