"""Replies that must not be kept as sent: a key the model echoes, tokens billed inside an
unreadable reply, a reply over the size limit (a real Pipeline on the loopback server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from masksql_pipe.loopback.server import LoopbackServer
from masksql_pipe.prompt.processor import PromptProcessor
from tests.lm.test_replies import FindValues, log_entries, rows_of, run
from tests.lm_fixtures import SECRET, read_rows, write_input


def every_file(folder: Path) -> dict[Path, bytes]:
    """Each file the run left under `folder` (stage files, cache, its WAL, prompt logs)."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


async def test_a_key_echoed_in_a_good_reply_is_scrubbed_before_anything_is_written(
    tmp_path: Path,
) -> None:
    write_input(tmp_path, rows_of(3))
    reply = json.dumps(["a value", f"the key is {SECRET}", SECRET[:12]])
    with LoopbackServer(reply=reply) as server:
        report = await run(tmp_path, server, FindValues("values", "loop"))
    assert report.errors == 0
    rows = read_rows(tmp_path / "2_FindValues.json")
    assert rows[0]["values"][0] == "a value" and "***" in rows[0]["values"][1]
    files = every_file(tmp_path)
    assert any(p.name == "cache.sqlite" for p in files) and len(files) >= 3
    leaks = [p.name for p, data in files.items() if SECRET[:10].encode() in data]
    assert leaks == []


async def test_tokens_reported_inside_unreadable_replies_are_counted(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(1))
    with LoopbackServer(reply='["x"]', faults=["unreadable", "ok"]) as server:
        report = await run(tmp_path, server, FindValues("values", "loop"))
        prompt = server.bodies()[0]["messages"][0]["content"]
    assert server.faults_sent() == {"unreadable": 1} and report.errors == 0
    assert report.stats["prompt_tokens"] == 2 * (len(prompt) // 4)
    assert report.stats["completion_tokens"] == 7 + len('["x"]') // 4


async def test_tokens_of_replies_that_stay_unreadable_are_counted(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(1))
    with LoopbackServer(reply='["x"]', faults=["unreadable"] * 3) as server:
        report = await run(tmp_path, server, FindValues("values", "loop"), spec={"max_retries": 2})
        prompt = server.bodies()[0]["messages"][0]["content"]
    assert report.errors == 1 and server.requests == 3
    assert report.stats["prompt_tokens"] == 3 * (len(prompt) // 4)
    assert report.stats["completion_tokens"] == 3 * 7


class Echo(PromptProcessor):
    """Keeps the reply as it is; refuses a reply that starts with "no"."""

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return f"Say something about {row['question']}"

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        if output.startswith("no"):
            raise ValueError("starts with no")
        return output


async def test_a_reply_over_the_size_limit_is_a_failed_call_never_kept(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(1))
    huge = "no" + "x" * 2_000_000
    with LoopbackServer(reply=huge) as server:
        stage = Echo("said", "loop", max_tokens=10**7)
        report = await run(tmp_path, server, stage, spec={"timeout": 20.0})
        prompt = server.bodies()[0]["messages"][0]["content"]
    assert report.errors == 1 and server.requests == 1  # never sent back in a retry prompt
    assert report.stats["failed_calls"] == 1
    assert report.stats["completion_tokens"] == len(huge) // 4
    assert report.stats["prompt_tokens"] == len(prompt) // 4
    big = {p.name: len(d) for p, d in every_file(tmp_path).items() if len(d) > 1_000_000}
    assert big == {}
    (entry,) = log_entries(tmp_path, "2_Echo")
    assert entry["reply"] is None and "max_reply_bytes 1000000" in entry["error"]


async def test_the_size_limit_is_a_stage_setting(tmp_path: Path) -> None:
    write_input(tmp_path, rows_of(1))
    with LoopbackServer(reply="y" * 5000) as server:
        report = await run(
            tmp_path, server, Echo("said", "loop", max_tokens=10**6, max_reply_bytes=4999)
        )
    assert report.errors == 1
    write_input(tmp_path / "b", rows_of(1))
    with LoopbackServer(reply="y" * 5000) as server:
        report = await run(
            tmp_path / "b", server, Echo("said", "loop", max_tokens=10**6, max_reply_bytes=5000)
        )
    assert report.errors == 0
