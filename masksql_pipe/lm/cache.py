"""Persistent response cache (SQLite, WAL): each prompt is paid for once, across crashes, reruns.

The key covers the model's settings (id, endpoint, sampling, reply budget, response format) and
the exact messages; only answers the stage accepted are stored (the caller stores them once it
has parsed them). Identical prompts in flight share one call. Each answer carries a checksum of
its key and body: an answer edited or damaged on disk (or stored by an older version, without a
checksum) is named in one warning line, dropped and asked again.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from masksql_pipe.errors import ConfigError, StageFatal
from masksql_pipe.lm.base import Completion, Messages

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency REAL NOT NULL,
    created REAL NOT NULL,
    checksum TEXT
)
"""


def answer_checksum(key: str, text: str, prompt_tokens: int, completion_tokens: int) -> str:
    """sha256 over a cached answer's key, text and token counts (what a lookup trusts)."""
    payload = orjson.dumps([key, text, prompt_tokens, completion_tokens])
    return hashlib.sha256(payload).hexdigest()


def cache_key(settings: dict[str, Any], messages: Messages) -> str:
    """sha256 over the model settings and the messages (canonical JSON, sorted keys)."""
    payload = orjson.dumps(
        {"settings": settings, "messages": messages}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(payload).hexdigest()


class CacheDamaged(StageFatal):
    """The cache file is damaged: the stage stops (exit 2), so no good row becomes an error row.

    Bypassing the cache instead would silently pay again for every answer; stopping keeps the
    journaled rows and tells the user the one command that fixes it.
    """

    def __init__(self, path: Path, exc: BaseException) -> None:
        super().__init__(
            f"response cache {path} is damaged ({exc}); delete it (rm {path}*) and run again: "
            "finished rows are kept, answers not in the stage files are asked again"
        )


class ResponseCache:
    """SQLite store of successful completions, keyed by `cache_key`; safe to share between runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
            if "checksum" not in columns:  # a cache of an older version: its rows are re-asked
                self._db.execute("ALTER TABLE responses ADD COLUMN checksum TEXT")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"response cache {self.path}: cannot open ({exc})") from exc
        self._inflight: dict[str, asyncio.Future[Completion]] = {}
        self.damaged: CacheDamaged | None = None
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._flush_scheduled = False
        self._warned_unchecked = False

    def get(self, key: str) -> Completion | None:
        """The stored completion for `key` (marked cached), or None."""
        if self.damaged is not None:
            raise self.damaged
        row = self._pending.get(key)
        if row is not None:
            row = row[1:5]
        else:
            try:
                row = self._db.execute(
                    "SELECT text, prompt_tokens, completion_tokens, latency, checksum"
                    " FROM responses WHERE key = ?",
                    (key,),
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                raise CacheDamaged(self.path, exc) from None
            if row is not None and not self._trusted(key, row):
                return None
        if row is None:
            return None
        return Completion(
            text=row[0],
            prompt_tokens=row[1],
            completion_tokens=row[2],
            latency=row[3],
            cached=True,
        )

    def _trusted(self, key: str, row: tuple[Any, ...]) -> bool:
        """Whether a stored row matches its checksum; if not, it is named, dropped (asked again)."""
        text, prompt_tokens, completion_tokens, _, checksum = row
        if checksum is None:
            if not self._warned_unchecked:
                self._warned_unchecked = True
                _warn(
                    f"response cache {self.path}: answers stored without a checksum (an older "
                    "version) are dropped and asked again"
                )
        else:
            valid = isinstance(text, str) and all(
                isinstance(n, int) for n in (prompt_tokens, completion_tokens)
            )
            if valid and checksum == answer_checksum(key, text, prompt_tokens, completion_tokens):
                return True
            _warn(
                f"response cache {self.path}: the answer stored for key {key[:12]} does not "
                "match its checksum (edited or damaged); dropped and asked again"
            )
        self.discard(key)
        return False

    def put(self, key: str, completion: Completion) -> None:
        """Store (or replace) a successful completion.

        Answers that arrive in the same turn of the event loop are written together in one
        transaction as soon as the loop gets control back (a commit per answer cost as much as
        the HTTP call at 100 in flight); outside a running loop the answer is written at once.
        """
        if self.damaged is not None:
            raise self.damaged
        self._pending[key] = (
            key,
            completion.text,
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.latency,
            time.time(),
            answer_checksum(
                key, completion.text, completion.prompt_tokens, completion.completion_tokens
            ),
        )
        if len(self._pending) >= self.FLUSH_ROWS:
            self.flush()
        elif not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_scheduled = True
            loop.call_soon(self.flush)

    FLUSH_ROWS = 1000
    """Answers written at the latest in one transaction, even within one loop turn."""

    def flush(self) -> None:
        """Write the answers not yet on disk, in one transaction."""
        self._flush_scheduled = False
        if not self._pending:
            return
        rows, self._pending = list(self._pending.values()), {}
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO responses"
                    " (key, text, prompt_tokens, completion_tokens, latency, created, checksum)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.DatabaseError as exc:
            self.damaged = CacheDamaged(self.path, exc)  # raised by the next get or put

    def discard(self, key: str) -> bool:
        """Forget the answer stored for `key` (one the stage no longer accepts); True if one was."""
        waiting = self._pending.pop(key, None) is not None
        return (
            self._db.execute("DELETE FROM responses WHERE key = ?", (key,)).rowcount > 0 or waiting
        )

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    async def fetch(
        self,
        key: str,
        call: Callable[[], Awaitable[Completion]],
        *,
        lookup: bool = True,
        store: bool = True,
    ) -> Completion:
        """The stored answer for `key`, else `call()` once (a twin already in flight is shared).

        With `lookup=False` the store is not read (a fresh call) but the fresh answer is kept.
        With `store=False` the fresh answer is not kept: the caller `put`s it once accepted.
        """
        if lookup:
            hit = self.get(key)
            if hit is not None:
                return hit
            pending = self._inflight.get(key)
            if pending is not None:
                try:
                    shared = await asyncio.shield(pending)
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if not pending.cancelled() or (task is not None and task.cancelling()):
                        raise
                    # the twin was cancelled, not us: make the call ourselves
                else:
                    return replace(shared, cached=True, retries=0)
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        if lookup:
            self._inflight[key] = future
        try:
            completion = await call()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: no "never retrieved" warning
            raise
        else:
            if store:
                self.put(key, completion)
            future.set_result(completion)
            return completion
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def close(self) -> None:
        """Write what is pending and close the database (idempotent)."""
        self.flush()
        self._db.close()


def _warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
