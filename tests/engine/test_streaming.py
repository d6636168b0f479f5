"""Streaming stages: memory bounded by the rows in flight, any valid layout read, output
byte-identical to the whole-list format, and kill -9 mid-stream resumes to the same bytes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from masksql_pipe import JsonListTransformer, Pipeline, RunOptions
from masksql_pipe.engine.files import dump_rows
from tests.conftest import ROOT

PASS_THROUGH = """
import asyncio, resource, sys
from masksql_pipe import JsonListTransformer, Pipeline, RunOptions
limit = int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class Mark(JsonListTransformer):
    async def _process_row(self, row):
        row["seen"] = row["n"] * 2
        return row


pipeline = Pipeline([Mark()], RunOptions(progress=False))
asyncio.run(pipeline.run(sys.argv[1]))
print(pipeline.reports[0].resumed_rows)
"""


class Mark(JsonListTransformer):
    """What the subprocess runs, for runs in this process."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row["seen"] = row["n"] * 2
        return row


def _env() -> dict[str, str]:
    # one malloc arena per thread would reserve 64 MB of address space each
    return {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2"}


def _run(input_file: Path, limit: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PASS_THROUGH, str(input_file), str(limit)],
        env=_env(),
        capture_output=True,
        text=True,
    )


def _write_big(path: Path, rows: int, text: str) -> None:
    """A stage file in the engine's layout, written a thousand rows at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for start in range(0, rows, 1000):
            chunk = [{"n": i, "text": text} for i in range(start, min(rows, start + 1000))]
            body = orjson.dumps(chunk, option=orjson.OPT_INDENT_2)[2:-2]
            handle.write((b",\n" if start else b"[\n") + body)
        handle.write(b"\n]\n")


def test_a_file_larger_than_the_memory_limit_streams_through(tmp_path: Path) -> None:
    limit = 320 << 20
    source = tmp_path / "data" / "1_input.json"
    _write_big(source, 200_000, "ß" * 1000)  # about 420 MB, more than the whole limit
    assert source.stat().st_size > limit + (64 << 20)
    result = _run(source, limit)
    assert result.returncode == 0, result.stderr[-2000:]
    count = 0
    with (tmp_path / "data" / "2_Mark.json").open("rb") as handle:
        for line in handle:  # one field a line at a known indent: read back without parsing
            if line.startswith(b'    "seen": '):
                assert int(line[12:].rstrip(b",\n")) == 2 * count
                count += 1
    assert count == 200_000


@pytest.mark.parametrize(
    "layout",
    [
        lambda rows: orjson.dumps(rows),  # one line
        lambda rows: json.dumps(rows, indent="\t", ensure_ascii=False).encode(),
        lambda rows: dump_rows(rows).replace(b"\n", b"\r\n"),
        lambda rows: json.dumps(rows, separators=(" ,", " : ")).encode() + b"\n\n",
    ],
    ids=["one-line", "tabs", "crlf", "spaced"],
)
def test_a_hand_edited_file_in_another_layout_reads_the_same(tmp_path: Path, layout) -> None:
    rows = [
        {"n": i, "q": 'a "quoted" }, {brace', "u": "Straße \u2028", "nested": {"l": [{}, []]}}
        for i in range(2500)
    ]
    source = tmp_path / "1_input.json"
    source.write_bytes(layout(rows))
    asyncio.run(Pipeline([Mark()], RunOptions(progress=False)).run(source))
    expected = dump_rows([{**row, "seen": row["n"] * 2} for row in rows])
    assert (tmp_path / "2_Mark.json").read_bytes() == expected


@pytest.mark.parametrize("count", [0, 1, 999, 1000, 1001, 2345])
def test_streamed_output_is_byte_identical_to_the_whole_list_format(
    tmp_path: Path, count: int
) -> None:
    rows = [{"n": i, "empty": {}, "list": [], "text": "ü ✓ \\ \n"} for i in range(count)]
    source = tmp_path / "1_input.json"
    source.write_bytes(dump_rows(rows))
    asyncio.run(Pipeline([Mark(), Mark().named("Again")], RunOptions(progress=False)).run(source))
    expected = dump_rows([{**row, "seen": row["n"] * 2} for row in rows])
    assert (tmp_path / "2_Mark.json").read_bytes() == expected
    assert (tmp_path / "3_Again.json").read_bytes() == expected
    assert not list((tmp_path / ".masksql_pipe" / "journal").glob("*")), "bookkeeping left"


def test_kill_9_mid_stream_then_rerun_gives_the_same_bytes(tmp_path: Path) -> None:
    source = tmp_path / "data" / "1_input.json"
    _write_big(source, 300_000, "x" * 300)
    index = tmp_path / "data" / ".masksql_pipe" / "journal" / "2_Mark.index"
    proc = subprocess.Popen(
        [sys.executable, "-c", PASS_THROUGH, str(source), "0"],
        env=_env(),
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    head = index.with_suffix(".head.json")
    # rows are reusable once the input's digest is in the head (computed beside the run)
    while (
        not index.exists() or b'"input": null' in head.read_bytes() or index.stat().st_size < 2000
    ):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not (tmp_path / "data" / "2_Mark.json").exists()
    assert index.with_suffix(".partial").stat().st_size > 0
    kept = sum(json.loads(line.split(b" ", 1)[1])[1] for line in index.read_bytes().splitlines())
    resumed = _run(source)
    assert resumed.returncode == 0, resumed.stderr
    assert int(resumed.stdout) >= kept > 0  # the rows written before the kill were kept
    clean = tmp_path / "clean" / "1_input.json"
    clean.parent.mkdir()
    clean.write_bytes(source.read_bytes())
    assert _run(clean).returncode == 0
    out = (tmp_path / "data" / "2_Mark.json").read_bytes()
    assert out == (tmp_path / "clean" / "2_Mark.json").read_bytes()
    assert not index.exists()


class SlowFirst(JsonListTransformer):
    """Row 0 finishes last: every other row waits for it to be written."""

    def __init__(self) -> None:
        self.started_while_first_pending = 0

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["n"] == 0:
            await asyncio.sleep(0.3)
            self.started_while_first_pending = self.started
        else:
            await asyncio.sleep(0)
        self.started = getattr(self, "started", 0) + 1
        return row


def test_rows_finished_out_of_order_are_bounded(tmp_path: Path) -> None:
    rows = [{"n": i} for i in range(5000)]
    source = tmp_path / "1_input.json"
    source.write_bytes(dump_rows(rows))
    stage = SlowFirst()
    asyncio.run(Pipeline([stage], RunOptions(concurrency=8, progress=False)).run(source))
    # the window is 1024 rows (4 x concurrency, at least 1024) plus the rows in flight
    assert 0 < stage.started_while_first_pending <= 1024 + 8
    assert (tmp_path / "2_SlowFirst.json").read_bytes() == dump_rows(rows)
