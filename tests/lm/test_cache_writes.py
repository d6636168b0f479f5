"""The response cache writes answers of one event-loop turn in one transaction, soon after."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from masksql_pipe.lm.base import Completion
from masksql_pipe.lm.cache import ResponseCache


def stored(path: Path) -> int:
    """Rows another connection (another process, a crash survivor) sees on disk."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def answer(i: int) -> Completion:
    return Completion(text=f"a{i}", prompt_tokens=1, completion_tokens=1, latency=0.01)


def test_answers_reach_the_disk_when_the_loop_turn_ends(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"

    async def go() -> tuple[int, int, int]:
        cache = ResponseCache(path)
        for i in range(50):
            cache.put(f"k{i}", answer(i))
        during = stored(path)
        seen = cache.get("k7")  # readable at once from this cache
        await asyncio.sleep(0)
        after = stored(path)
        cache.close()
        return during, after, seen.text if seen else ""

    during, after, seen = asyncio.run(go())
    assert during == 0  # not one commit per answer
    assert after == 50  # one transaction as soon as the loop got control back
    assert seen == "a7"


def test_outside_a_loop_and_on_close_nothing_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    cache.put("k", answer(1))
    assert stored(path) == 1  # no loop: written at once
    cache.close()

    async def go() -> None:
        again = ResponseCache(path)
        again.put("k2", answer(2))
        again.close()  # before the loop turn ends

    asyncio.run(go())
    assert stored(path) == 2
    assert ResponseCache(path).discard("k2")
