"""Cached answers carry a checksum: one edited on disk, or stored by an older version without
one, is named in a warning line, dropped and asked again (a real Pipeline, the loopback server
and the cache's real SQLite file)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from masksql_pipe.loopback.server import LoopbackServer
from tests.lm.test_replies import FindValues, rows_of, run
from tests.lm_fixtures import read_rows, write_input

OLD_SCHEMA = """CREATE TABLE responses (key TEXT PRIMARY KEY, text TEXT NOT NULL,
prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, latency REAL NOT NULL,
created REAL NOT NULL)"""


def cache_file(folder: Path) -> Path:
    return folder / ".masksql_pipe" / "cache.sqlite"


def reply(messages: list[dict[str, str]]) -> str:
    return json.dumps([messages[0]["content"].rsplit(" ", 1)[-1]])


async def test_edited_answers_are_named_dropped_and_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_input(tmp_path, rows_of(6))
    with LoopbackServer(reply=reply) as server:
        await run(tmp_path, server, FindValues("values", "loop"))
        with sqlite3.connect(cache_file(tmp_path)) as db:
            keys = [k for (k,) in db.execute("SELECT key FROM responses ORDER BY key LIMIT 3")]
            db.executemany(
                "UPDATE responses SET text = '[\"edited\"]' WHERE key = ?", [(k,) for k in keys]
            )
        capsys.readouterr()
        report = await run(tmp_path, server, FindValues("values", "loop"), force=True)
        assert server.requests == 6 + 3
    warned = [line for line in capsys.readouterr().err.splitlines() if "checksum" in line]
    assert len(warned) == 3 and all(any(k[:12] in line for line in warned) for k in keys)
    assert report.stats["calls"] == 3 and report.stats["cache_hits"] == 3
    rows = read_rows(tmp_path / "2_FindValues.json")
    assert [r["values"] for r in rows] == [[str(i)] for i in range(6)]


async def test_answers_stored_without_a_checksum_are_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_input(tmp_path, rows_of(2))
    with LoopbackServer(reply=reply) as server:
        await run(tmp_path, server, FindValues("values", "loop"))
        with sqlite3.connect(cache_file(tmp_path)) as db:  # as an older version wrote it
            kept = db.execute(
                "SELECT key, text, prompt_tokens, completion_tokens, latency, created"
                " FROM responses"
            ).fetchall()
            db.execute("DROP TABLE responses")
            db.execute(OLD_SCHEMA)
            db.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?)", kept)
        capsys.readouterr()
        report = await run(tmp_path, server, FindValues("values", "loop"), force=True)
        assert server.requests == 2 + 2
    warned = [line for line in capsys.readouterr().err.splitlines() if "checksum" in line]
    assert len(warned) == 1 and "older version" in warned[0]
    assert report.stats["calls"] == 2 and report.stats["cache_hits"] == 0
    report = await run(tmp_path, server, FindValues("values", "loop"), force=True)
    assert report.stats["cache_hits"] == 2  # the answers asked again now carry a checksum
