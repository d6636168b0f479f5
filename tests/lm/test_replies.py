"""Replies as real models send them: cut off, unparsable, structured; what failed calls cost.

Every test runs a real Pipeline against the loopback server through the real `openai` client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from masksql_pipe.engine.pipeline import Pipeline
from masksql_pipe.engine.stage import ERROR_KEY, RunOptions
from masksql_pipe.lm import ResponseCache, cache_key
from masksql_pipe.loopback.server import LoopbackServer, empty_json_reply, prompt_id
from masksql_pipe.prompt.processor import DEFAULT_MAX_TOKENS, PromptProcessor
from tests.lm_fixtures import read_rows, registry_for, write_input

LIST_SCHEMA = {"title": "values", "type": "array", "items": {"type": "string"}}


class FindValues(PromptProcessor):
    """Asks for a JSON list of strings; anything else is refused by `_process_output`."""

    answer_schema = LIST_SCHEMA

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return f"List the values in: {row['question']}"

    def _process_output(self, row: dict[str, Any], output: str) -> list[str]:
        value = json.loads(output)
        if not isinstance(value, list):
            raise ValueError(f"expected a JSON list, got {type(value).__name__}")
        return value


def quiet(**kw: Any) -> RunOptions:
    return RunOptions(progress=False, **kw)


def rows_of(n: int) -> list[dict[str, Any]]:
    return [{"question": f"question number {i}"} for i in range(n)]


def log_entries(folder: Path, stage: str = "2_FindValues") -> list[dict[str, Any]]:
    path = folder / ".masksql_pipe" / "prompts" / f"{stage}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def server_tokens(body: dict[str, Any], reply: str) -> int:
    """Prompt + completion tokens as the loopback server counts them (len // 4 each)."""
    prompt = "".join(str(m.get("content", "")) for m in body["messages"])
    return len(prompt) // 4 + len(reply) // 4


def first_user(body: dict[str, Any]) -> str:
    return body["messages"][0]["content"]


async def run(folder: Path, server: LoopbackServer, stage: PromptProcessor, **options: Any):
    """Run one stage over folder/1_input.json on the loopback model 'loop'."""
    spec = options.pop("spec", {})
    registry = registry_for(server, **spec)
    pipeline = Pipeline([stage], quiet(registry=registry, **options))
    try:
        await pipeline.run(folder / "1_input.json")
    finally:
        await registry.aclose()
    return pipeline.reports[0]


# -- a reply cut off at the token limit -----------------------------------------------------------


async def test_length_finish_is_a_failed_call_logged_counted_and_not_cached(
    tmp_path: Path,
) -> None:
    long_list = json.dumps([f"value {i}" for i in range(40)])  # ~100 tokens
    write_input(tmp_path, rows_of(2))
    with LoopbackServer(reply=long_list) as srv:
        report = await run(
            tmp_path, srv, FindValues("values", "loop", max_tokens=8, parse_retries=0)
        )
        bodies = srv.bodies()
    assert [b["max_tokens"] for b in bodies] == [8, 8]  # the stage's budget is sent
    assert all(b["temperature"] == 0 for b in bodies)  # and temperature 0 by default
    out = read_rows(tmp_path / "2_FindValues.json")
    assert [r[ERROR_KEY]["type"] for r in out] == ["ReplyCutOff", "ReplyCutOff"]
    assert all("values" not in r for r in out)
    cut = long_list[: 8 * 4]  # what the server sent back
    for row in out:
        body = next(b for b in bodies if first_user(b).endswith(row["question"]))
        assert row["total_toks"] == server_tokens(body, cut)  # the failed call's tokens count
        assert row["total_latency"] > 0
    entries = log_entries(tmp_path)
    assert [e["finish_reason"] for e in entries] == ["length", "length"]
    assert all("cut off" in e["rejected"] for e in entries)
    assert report.stats["cut_off_replies"] == 2 and report.stats["rejected_replies"] == 2
    assert report.stats["completion_tokens"] == 2 * (len(cut) // 4)
    cache = ResponseCache(tmp_path / ".masksql_pipe" / "cache.sqlite")
    assert len(cache) == 0  # a cut-off reply is never an answer
    cache.close()


async def test_cut_off_reply_is_asked_again_and_the_second_answer_kept(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(1))
    with LoopbackServer(reply='["a value", "another value"]', faults=["length"]) as srv:
        report = await run(tmp_path, srv, FindValues("values", "loop"))
        bodies = srv.bodies()
    assert len(bodies) == 2
    follow_up = bodies[1]["messages"]
    assert follow_up[1] == {"role": "assistant", "content": '["a value", "a'}  # half, cut off
    assert follow_up[2]["role"] == "user" and "cut off" in follow_up[2]["content"]
    [row] = read_rows(tmp_path / "2_FindValues.json")
    assert row["values"] == ["a value", "another value"]
    assert row["total_toks"] == server_tokens(bodies[0], '["a value", "a') + server_tokens(
        bodies[1], '["a value", "another value"]'
    )
    assert report.stats["parse_retries"] == 1 and report.stats["calls"] == 2


# -- a reply that fails to parse ------------------------------------------------------------------


async def test_parse_retry_appends_the_error_and_counts_both_attempts(tmp_path: Path) -> None:
    def reply(messages: list[dict[str, Any]]) -> str:
        return '["ok"]' if len(messages) > 1 else "Sure! The values are: none."

    write_input(tmp_path, rows_of(3))
    with LoopbackServer(reply=reply, latency=0.02) as srv:
        report = await run(tmp_path, srv, FindValues("values", "loop"))
        bodies = srv.bodies()
    assert len(bodies) == 6
    for row in read_rows(tmp_path / "2_FindValues.json"):
        mine = [b for b in bodies if first_user(b).endswith(row["question"])]
        assert [len(b["messages"]) for b in mine] == [1, 3]
        assistant, user = mine[1]["messages"][1:]
        assert assistant == {"role": "assistant", "content": "Sure! The values are: none."}
        assert user["role"] == "user"
        with pytest.raises(ValueError) as parse_error:
            json.loads(assistant["content"])
        assert user["content"].startswith(f"Your reply could not be used: {parse_error.value}")
        assert row["values"] == ["ok"]
        expected = server_tokens(mine[0], "Sure! The values are: none.")
        assert row["total_toks"] == expected + server_tokens(mine[1], '["ok"]')
        assert row["total_latency"] >= 2 * 0.02  # both attempts' service time
    stats = report.stats
    assert stats["calls"] == 6 and stats["parse_retries"] == 3 and stats["rejected_replies"] == 3
    assert stats["prompt_tokens"] + stats["completion_tokens"] == sum(
        server_tokens(b, '["ok"]' if len(b["messages"]) > 1 else "Sure! The values are: none.")
        for b in bodies
    )
    entries = log_entries(tmp_path)
    assert sorted(e["attempt"] for e in entries) == [0, 0, 0, 1, 1, 1]
    assert all(("rejected" in e) == (e["attempt"] == 0) for e in entries)


async def test_tokens_of_a_row_that_failed_are_in_its_totals(tmp_path: Path) -> None:
    write_input(tmp_path, [{"question": "q", "total_toks": 7, "total_latency": 0.5}])
    with LoopbackServer(reply='{"not": "a list"}') as srv:
        report = await run(tmp_path, srv, FindValues("values", "loop", parse_retries=1))
        bodies = srv.bodies()
    [row] = read_rows(tmp_path / "2_FindValues.json")
    assert (
        row[ERROR_KEY]["type"] == "ValueError"
        and "expected a JSON list" in row[ERROR_KEY]["message"]
    )
    assert len(bodies) == 2
    assert row["total_toks"] == 7 + sum(server_tokens(b, '{"not": "a list"}') for b in bodies)
    assert row["total_latency"] > 0.5
    assert report.errors == 1 and report.stats["calls"] == 2


async def test_retry_errors_asks_the_model_again_for_a_reply_that_failed_to_parse(
    tmp_path: Path,
) -> None:
    answers = iter(["I am not sure how to answer that."] + ['["found"]'] * 10)
    write_input(tmp_path, rows_of(3))
    with LoopbackServer(
        reply=lambda m: next(answers) if m[0]["content"].endswith("1") else '["x"]'
    ) as srv:
        await run(tmp_path, srv, FindValues("values", "loop", parse_retries=0))
        out = read_rows(tmp_path / "2_FindValues.json")
        assert ERROR_KEY in out[1] and ERROR_KEY not in out[0]
        pid = prompt_id([{"role": "user", "content": "List the values in: question number 1"}])
        assert srv.requests_by_prompt()[pid] == 1
        report = await run(
            tmp_path, srv, FindValues("values", "loop", parse_retries=0), retry_errors=True
        )
        assert srv.requests_by_prompt()[pid] == 2  # asked again, not served the bad reply
        assert srv.requests == 4  # and only that row
    assert report.stats["calls"] == 1 and report.stats["cache_hits"] == 0
    assert read_rows(tmp_path / "2_FindValues.json")[1]["values"] == ["found"]


async def test_a_stored_answer_the_stage_now_refuses_is_dropped_and_asked_again(
    tmp_path: Path,
) -> None:
    write_input(tmp_path, rows_of(1))
    with LoopbackServer(reply='["fresh"]') as srv:
        registry = registry_for(srv)
        model = registry.get("loop")
        messages = [{"role": "user", "content": "List the values in: question number 0"}]
        key = cache_key(model.call_settings(max_tokens=DEFAULT_MAX_TOKENS), messages)
        await registry.aclose()
        cache = ResponseCache(tmp_path / ".masksql_pipe" / "cache.sqlite")
        stored = await cache.fetch(key, lambda: _completion("no list here"))
        assert stored.text == "no list here" and len(cache) == 1  # as an older run stored it
        cache.close()
        report = await run(tmp_path, srv, FindValues("values", "loop", parse_retries=0))
        assert srv.requests == 1
    [row] = read_rows(tmp_path / "2_FindValues.json")
    assert row["values"] == ["fresh"]
    assert report.stats["cache_hits"] == 1 and report.stats["calls"] == 1
    cache = ResponseCache(tmp_path / ".masksql_pipe" / "cache.sqlite")
    assert cache.get(key).text == '["fresh"]'  # the accepted answer replaced it
    cache.close()


async def _completion(text: str):
    from masksql_pipe.lm import Completion

    return Completion(text, 10, 3, 0.1)


# -- structured output ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("structured", "expected"),
    [
        (
            "json_schema",
            {
                "type": "json_schema",
                "json_schema": {"name": "values", "schema": LIST_SCHEMA, "strict": False},
            },
        ),
        ("json_object", {"type": "json_object", "schema": LIST_SCHEMA}),
        (None, None),
    ],
)
async def test_response_format_arrives_in_the_configured_form(
    tmp_path: Path, structured: str | None, expected: dict[str, Any] | None
) -> None:
    write_input(tmp_path, rows_of(2))
    with LoopbackServer(reply='["v"]') as srv:
        await run(tmp_path, srv, FindValues("values", "loop"), spec={"structured": structured})
        assert srv.response_formats() == [expected, expected]
    assert [r["values"] for r in read_rows(tmp_path / "2_FindValues.json")] == [["v"], ["v"]]


class FindLinks(FindValues):
    """Asks for a JSON object of term -> column."""

    answer_schema = {"type": "object", "additionalProperties": {"type": "string"}}

    def _process_output(self, row: dict[str, Any], output: str) -> dict[str, str]:
        value = json.loads(output)
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {type(value).__name__}")
        return value


@pytest.mark.parametrize("structured", ["json_schema", "json_object"])
async def test_a_model_that_finds_nothing_answers_each_schema_with_its_empty_form(
    tmp_path: Path, structured: str
) -> None:
    write_input(tmp_path, rows_of(2))
    with LoopbackServer(body_reply=empty_json_reply) as srv:
        registry = registry_for(srv, structured=structured)
        stages = [FindValues("values", "loop"), FindLinks("links", "loop")]
        await Pipeline(stages, quiet(registry=registry)).run(tmp_path / "1_input.json")
        await registry.aclose()
        assert srv.requests == 4  # every reply parsed at the first attempt
    out = read_rows(tmp_path / "3_FindLinks.json")
    assert [(r["values"], r["links"]) for r in out] == [([], {}), ([], {})]


async def test_the_response_format_is_part_of_the_cache_key(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(2))
    with LoopbackServer(reply='["v"]') as srv:
        await run(tmp_path, srv, FindValues("values", "loop"), spec={"structured": "json_object"})
        await run(tmp_path, srv, FindValues("values", "loop"), spec={"structured": "json_schema"})
        assert srv.requests == 4  # another form is another request, not a cache hit
        await run(
            tmp_path,
            srv,
            FindValues("values", "loop"),
            spec={"structured": "json_schema"},
            force=True,
        )
        assert srv.requests == 4


async def test_an_endpoint_refusing_the_form_fails_the_row_with_a_clear_error(
    tmp_path: Path,
) -> None:
    write_input(tmp_path, rows_of(1))
    with LoopbackServer(reply='["v"]', response_forms=("text", "json_object")) as srv:
        await run(tmp_path, srv, FindValues("values", "loop"), spec={"structured": "json_schema"})
    [row] = read_rows(tmp_path / "2_FindValues.json")
    assert "HTTP 400" in row[ERROR_KEY]["message"] and "json_schema" in row[ERROR_KEY]["message"]


# -- request defaults -----------------------------------------------------------------------------


async def test_model_settings_override_the_stage_budget_and_null_drops_temperature(
    tmp_path: Path,
) -> None:
    write_input(tmp_path, rows_of(1))
    with LoopbackServer(reply='["v"]') as srv:
        settings = {"max_tokens": 64, "temperature": None}
        await run(tmp_path, srv, FindValues("values", "loop"), spec={"settings": settings})
        [body] = srv.bodies()
    assert body["max_tokens"] == 64 and "temperature" not in body


# -- wait is not latency; local endpoints get a conservative default concurrency ------------------


async def test_waiting_for_a_slot_is_recorded_apart_from_latency(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(12))
    with LoopbackServer(reply='["v"]', latency=0.05) as srv:
        report = await run(tmp_path, srv, FindValues("values", "loop"), concurrency=12)
        assert srv.max_in_flight == 4  # the default for a server on this machine
    entries = log_entries(tmp_path)
    assert max(e["latency"] for e in entries) < 0.05 * 3  # service time only...
    assert max(e["wait"] for e in entries) >= 0.05 * 2  # ...the queue is apart
    assert report.stats["queue_seconds"] == pytest.approx(sum(e["wait"] for e in entries), abs=1e-3)
    out = read_rows(tmp_path / "2_FindValues.json")
    assert all(r["total_latency"] < 0.05 * 3 for r in out)


async def test_max_concurrency_overrides_the_local_default(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(12))
    with LoopbackServer(reply='["v"]', latency=0.05) as srv:
        await run(
            tmp_path,
            srv,
            FindValues("values", "loop"),
            concurrency=12,
            spec={"max_concurrency": 12},
        )
        assert srv.max_in_flight > 4
