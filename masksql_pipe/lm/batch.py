"""Provider batch APIs (OpenAI's and compatibles): each batch submitted once, resumed after a crash.

The prompts the cache cannot answer are written as JSONL (one chat request a line, `custom_id`
= the response-cache key), uploaded (`files.create`, purpose `batch`) and submitted
(`batches.create`, endpoint `/v1/chat/completions`). The uploaded file's id and then the
batch id are written to a record file before any waiting, so an interrupted run (Ctrl-C,
kill -9, a closed laptop) polls the same batch again and never submits it twice; a run stopped
between creating a batch and recording it finds the batch by its input file. Batches past the
provider's limits (requests or bytes per file) are split. Polling backs off; terminal batches
are downloaded: answered lines become completions, failed, expired or cancelled lines become
per-prompt errors. The limits and polling pace are `model_entries.BatchSettings`, the models
file's `batch:` entry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from masksql_pipe.engine.files import read_json, write_json
from masksql_pipe.errors import ModelError
from masksql_pipe.lm.base import Completion
from masksql_pipe.lm.pricing import cached_tokens

if TYPE_CHECKING:
    from masksql_pipe.lm.model_entries import BatchSettings

ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "expired", "cancelled", "failed")
LIST_LIMIT = 1000
"""Recent batches searched for one created just before an interruption."""


def parse_batch(where: str, value: Any) -> BatchSettings | None:
    """`batch: true` or `batch: {max_requests, max_bytes, poll_seconds, ...}` from a models file."""
    from masksql_pipe.lm.model_entries import ModelEntry, validate_part

    return validate_part(ModelEntry, {"batch": value}, where).batch


@dataclass
class BatchOutcome:
    """What the batches brought back: answers and errors by key, and notes for the user."""

    answers: dict[str, Completion] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    """One summary per batch: id, status, counts, whether it was resumed."""


class BatchRunner:
    """Submits prompts as provider batches for one model and collects them, resumably.

    `record` is a JSON file listing the batches of this stage (id, input file, request keys,
    state, failed keys): written as soon as a batch is created, so a rerun polls (or downloads
    again) the batches it lists instead of submitting their requests anew. `on_status`
    receives a short line ("batch-3 in_progress 40/100 done") for the progress display.
    """

    def __init__(
        self,
        client: Any,
        record: Path,
        settings: BatchSettings,
        *,
        on_status: Callable[[str], None] | None = None,
        label: str = "",
    ) -> None:
        self.client = client
        self.record = record
        self.settings = settings
        self.on_status = on_status or (lambda text: None)
        self.label = label
        self._status: dict[str, str] = {}
        self.submitted = 0
        """Batches created by this runner (resumed ones not counted)."""

    # -- record ----------------------------------------------------------------------------------
    def _load(self) -> list[dict[str, Any]]:
        data = read_json(self.record)
        entries = data.get("batches") if isinstance(data, dict) else None
        return [
            e
            for e in entries or []
            if isinstance(e, dict)
            and (isinstance(e.get("id"), str) or isinstance(e.get("input_file_id"), str))
        ]

    def _save(self, entries: list[dict[str, Any]]) -> None:
        if entries:
            write_json(self.record, {"batches": entries})
        else:
            self.record.unlink(missing_ok=True)

    # -- the whole job ---------------------------------------------------------------------------
    async def run(self, requests: dict[str, dict[str, Any]]) -> BatchOutcome:
        """Answer every request (key -> chat request body) through batches; see the class doc."""
        outcome = BatchOutcome()
        needed = set(requests)
        entries: list[dict[str, Any]] = []
        for entry in self._load():
            keys = set(entry.get("keys") or []) & needed
            if entry.get("state") == "collected":
                # answers downloaded before an interruption are fetched again; its failed
                # requests are not: they go into a new batch
                keys -= set(entry.get("failed") or [])
            if keys:
                entry["resumed"] = True
                entries.append(entry)
                needed -= set(entry["keys"])
        self._save(entries)  # batches for prompts no longer needed are forgotten
        for entry in entries:
            if entry.get("id") is None:  # interrupted between the upload and the batch
                await self._create(entry, entries)
        for chunk in self._chunks([k for k in requests if k in needed], requests):
            entry = await self._upload(chunk)
            entries.append(entry)
            self._save(entries)  # the uploaded file is on disk before the batch exists
            await self._create(entry, entries)
        await asyncio.gather(*(self._follow(entry, entries, outcome) for entry in entries))
        return outcome

    def _chunks(
        self, keys: list[str], requests: dict[str, dict[str, Any]]
    ) -> list[list[tuple[str, bytes]]]:
        """The request lines, split so no batch passes the request or byte limit."""
        chunks: list[list[tuple[str, bytes]]] = []
        current: list[tuple[str, bytes]] = []
        size = 0
        for key in keys:
            line = orjson.dumps(
                {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": requests[key]}
            )
            if len(line) + 1 > self.settings.max_bytes:
                raise ModelError(
                    f"{self.label}: one request is {len(line)} bytes, more than the batch file "
                    f"limit ({self.settings.max_bytes}); run this stage without --batch"
                )
            if current and (
                len(current) >= self.settings.max_requests
                or size + len(line) + 1 > self.settings.max_bytes
            ):
                chunks.append(current)
                current, size = [], 0
            current.append((key, line))
            size += len(line) + 1
        if current:
            chunks.append(current)
        return chunks

    async def _upload(self, chunk: list[tuple[str, bytes]]) -> dict[str, Any]:
        data = b"\n".join(line for _, line in chunk) + b"\n"
        uploaded = await self.client.files.create(
            file=("batch_input.jsonl", data, "application/jsonl"), purpose="batch"
        )
        return {
            "id": None,
            "input_file_id": uploaded.id,
            "keys": [key for key, _ in chunk],
            "created": time.time(),
            "state": "uploaded",
        }

    async def _create(self, entry: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        """Create the batch of an uploaded file, unless one exists already (a run stopped
        between creating it and writing its id finds it by its input file), and record its id
        before any waiting."""
        found = None
        if entry.get("resumed"):
            seen = 0
            async for batch in self.client.batches.list(limit=100):  # newest first
                if batch.input_file_id == entry["input_file_id"]:
                    found = batch
                    break
                seen += 1
                if seen >= LIST_LIMIT:
                    break
        if found is None:
            found = await self.client.batches.create(
                input_file_id=entry["input_file_id"],
                endpoint=ENDPOINT,
                completion_window=self.settings.window,
            )
            self.submitted += 1
        entry["id"] = found.id
        entry["state"] = "submitted"
        self._save(entries)

    async def _follow(
        self, entry: dict[str, Any], entries: list[dict[str, Any]], outcome: BatchOutcome
    ) -> None:
        """Poll one batch with back-off until it ends, then collect it."""
        delay = self.settings.poll_seconds
        while True:
            batch = await self.client.batches.retrieve(entry["id"])
            self._show(batch)
            if batch.status in TERMINAL:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.settings.max_poll_seconds)
        answers, errors = await self._collect(batch, entry)
        outcome.answers.update(answers)
        outcome.errors.update(errors)
        counts = _counts(batch)
        outcome.batches.append(
            {
                "id": batch.id,
                "status": batch.status,
                "requests": len(entry["keys"]),
                "completed": len(answers),
                "failed": len(errors),
                "resumed": bool(entry.get("resumed")),
            }
        )
        if batch.status in ("expired", "cancelled"):
            outcome.notes.append(
                f"batch {batch.id} {batch.status} with {len(answers)} of {len(entry['keys'])} "
                f"requests answered ({counts}); the answers received are kept, the "
                f"{len(errors)} others are row errors: rerun with --retry-errors to send them "
                "as a new batch" + (" (or without --batch)" if batch.status == "expired" else "")
            )
        elif batch.status == "failed":
            outcome.notes.append(
                f"batch {batch.id} failed validation ({_batch_errors(batch)}); "
                "check the model id and settings, then rerun"
            )
        entry["state"] = "collected"
        entry["failed"] = sorted(errors)
        entry.pop("resumed", None)
        self._save(entries)

    def _show(self, batch: Any) -> None:
        self._status[batch.id] = f"{batch.id} {batch.status} {_counts(batch)}"
        self.on_status("; ".join(self._status.values()))

    async def _collect(
        self, batch: Any, entry: dict[str, Any]
    ) -> tuple[dict[str, Completion], dict[str, str]]:
        answers: dict[str, Completion] = {}
        errors: dict[str, str] = {}
        keys = set(entry["keys"])
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id)
            for raw in content.content.splitlines():
                if not raw.strip():
                    continue
                item = orjson.loads(raw)
                key = item.get("custom_id")
                if key not in keys:
                    continue
                answer = _answer(item)
                if isinstance(answer, Completion):
                    answers[key] = answer
                else:
                    errors[key] = f"batch {batch.id}: {answer}"
        for key in keys - answers.keys() - errors.keys():
            if batch.status == "failed":
                errors[key] = f"batch {batch.id} failed: {_batch_errors(batch)}"
            else:
                errors[key] = f"batch {batch.id} {batch.status} without an answer for this request"
        for key, message in errors.items():
            if batch.status in ("expired", "cancelled"):
                message += f"; batch {batch.status}: rerun with --retry-errors to send it again"
            else:
                message += "; rerun with --retry-errors to send it in a new batch"
            errors[key] = message
        return answers, errors


def _answer(item: dict[str, Any]) -> Completion | str:
    """One output line as a completion, or why it failed."""
    error = item.get("error")
    response = item.get("response") or {}
    if error:
        return f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    status = response.get("status_code")
    body = response.get("body") or {}
    if status != 200:
        inner = body.get("error") if isinstance(body, dict) else None
        detail = inner.get("message") if isinstance(inner, dict) else ""
        return f"HTTP {status} ({detail or 'no detail'})"
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return "an answer that is not chat.completion JSON"
    usage = body.get("usage") or {}
    return Completion(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        latency=0.0,
        cached_tokens=cached_tokens(usage),
        finish_reason=choice.get("finish_reason"),
    )


def _counts(batch: Any) -> str:
    counts = batch.request_counts
    if counts is None:
        return "0/?"
    return f"{counts.completed}/{counts.total} done, {counts.failed} failed"


def _batch_errors(batch: Any) -> str:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    messages = [str(getattr(e, "message", e)) for e in data[:3]]
    return "; ".join(messages) or "no detail given"
