"""A provider batch API on 127.0.0.1 for the tests: the loopback server plus files and batches.

The product's loopback server (masksql_pipe.loopback.server) answers chat requests; only the
tests need the batch endpoints, so they live here.

Upload a JSONL file (`POST /v1/files`, purpose `batch`), create a batch over it
(`POST /v1/batches`), poll it (`GET /v1/batches/{id}`), cancel it, and download the output and
error files (`GET /v1/files/{id}/content`), as OpenAI's Batch API does. A batch finishes
`delay` seconds after creation; `fail_rate` fails a seeded share of lines (per prompt and
attempt, so a retry of the same prompt may pass), `expire` lets a batch expire with part of its
lines answered, and `cancel()` cancels one. Limits (`max_requests`, `max_bytes`) reject batches
that are too large, as a provider does.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from masksql_pipe.loopback.server import LoopbackServer, completion_body

Reply = Callable[[list[dict[str, Any]]], str]
"""The reply text for a prompt's messages (the loopback server's `reply`)."""


@dataclass
class _Batch:
    id: str
    input_file_id: str
    lines: list[dict[str, Any]]
    created: float
    endpoint: str
    completion_window: str
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    finished_at: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    cancel_requested: bool = False


class BatchService:
    """Files and batches for a loopback server; `reply()` gives each line's answer text."""

    def __init__(self, reply: Callable[[], Reply]) -> None:
        self.reply = reply
        self.delay = 0.2
        """Seconds from creation until a batch is finished (validating, then in progress)."""
        self.fail_rate = 0.0
        self.seed = 0
        self.expire = False
        """When true, a batch expires at its deadline with only the first half answered."""
        self.invalid: str | None = None
        """When set, batches fail validation with this message (status "failed", no lines run)."""
        self.max_requests = 50_000
        self.max_bytes = 200 * 1024**2
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, bytes]] = {}
        self._batches: dict[str, _Batch] = {}
        self._ids = itertools.count(1)
        self._attempts: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        """Requests received: upload, create, list, retrieve, cancel, content."""
        self.batch_sizes: list[int] = []
        """Lines in each created batch, in creation order."""

    def add_routes(self, app: web.Application) -> None:
        """Serve the endpoints on `app`."""
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}", self._file_info)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel)

    # ---- test controls -----------------------------------------------------------------------
    def cancel(self, batch_id: str) -> None:
        """Cancel a batch as its owner might from the provider's dashboard."""
        with self._lock:
            self._batches[batch_id].cancel_requested = True

    def batch_ids(self) -> list[str]:
        """Ids of every batch created, oldest first."""
        with self._lock:
            return list(self._batches)

    def usage_by_prompt(self) -> dict[str, dict[str, int]]:
        """Usage reported for each answered line, keyed by its custom_id (for cost checks)."""
        found: dict[str, dict[str, int]] = {}
        with self._lock:
            files = dict(self._files)
        for name, data in files.values():
            if not name.startswith("output"):
                continue
            for line in data.splitlines():
                item = orjson.loads(line)
                found[item["custom_id"]] = item["response"]["body"]["usage"]
        return found

    # ---- files -------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        purpose = form.get("purpose")
        if upload is None or not hasattr(upload, "file"):
            return _error(400, "a multipart 'file' is required")
        if purpose != "batch":
            return _error(400, f"purpose must be 'batch', got {purpose!r}")
        data = upload.file.read()
        with self._lock:
            self.counts["upload"] += 1
            file_id = self._new_id("file")
            self._files[file_id] = (str(upload.filename or "input.jsonl"), data)
        return _json(_file_object(file_id, upload.filename or "input.jsonl", len(data), "batch"))

    async def _file_info(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            return _error(404, f"no file {file_id}")
        return _json(_file_object(file_id, found[0], len(found[1]), "batch"))

    async def _content(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        with self._lock:
            self.counts["content"] += 1
            found = self._files.get(file_id)
        if found is None:
            return _error(404, f"no file {file_id}")
        return web.Response(body=found[1], content_type="application/octet-stream")

    # ---- batches -----------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        file_id = body.get("input_file_id")
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            return _error(404, f"no file {file_id}")
        if body.get("endpoint") != "/v1/chat/completions":
            return _error(400, f"unsupported endpoint {body.get('endpoint')!r}")
        data = found[1]
        if len(data) > self.max_bytes:
            return _error(400, f"batch file is {len(data)} bytes; the limit is {self.max_bytes}")
        lines = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        if len(lines) > self.max_requests:
            return _error(400, f"batch has {len(lines)} requests; the limit is {self.max_requests}")
        with self._lock:
            self.counts["create"] += 1
            batch = _Batch(
                id=self._new_id("batch"),
                input_file_id=file_id,
                lines=lines,
                created=time.time(),
                endpoint=body["endpoint"],
                completion_window=str(body.get("completion_window", "24h")),
                counts={"total": len(lines), "completed": 0, "failed": 0},
            )
            self._batches[batch.id] = batch
            self.batch_sizes.append(len(lines))
        return _json(self._view(batch))

    async def _list(self, request: web.Request) -> web.Response:
        with self._lock:
            self.counts["list"] += 1
            batches = list(self._batches.values())[::-1]  # newest first, one page
        return _json(
            {"object": "list", "data": [self._view(b) for b in batches], "has_more": False}
        )

    async def _retrieve(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["id"]
        with self._lock:
            self.counts["retrieve"] += 1
            batch = self._batches.get(batch_id)
        if batch is None:
            return _error(404, f"no batch {batch_id}")
        self._advance(batch)
        return _json(self._view(batch))

    async def _cancel(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["id"]
        with self._lock:
            self.counts["cancel"] += 1
            batch = self._batches.get(batch_id)
            if batch is None:
                return _error(404, f"no batch {batch_id}")
            batch.cancel_requested = True
        self._advance(batch)
        return _json(self._view(batch))

    def _advance(self, batch: _Batch) -> None:
        """Move a batch along its life cycle by the clock (lazily, when it is looked at)."""
        if batch.status in ("completed", "expired", "cancelled", "failed"):
            return
        age = time.time() - batch.created
        if self.invalid is not None:
            batch.status = "failed"
            batch.finished_at = int(time.time())
            batch.counts["failed"] = 0
            return
        if batch.cancel_requested:
            if batch.status != "cancelling":
                batch.status = "cancelling"
                return
            self._finish(batch, "cancelled", answered=len(batch.lines) // 2)
            return
        if age < self.delay / 2:
            batch.status = "validating"
        elif age < self.delay:
            batch.status = "in_progress"
            done = int(len(batch.lines) * (age / self.delay))
            batch.counts["completed"] = done
        elif self.expire:
            self._finish(batch, "expired", answered=len(batch.lines) // 2)
        else:
            self._finish(batch, "completed", answered=len(batch.lines))

    def _finish(self, batch: _Batch, status: str, answered: int) -> None:
        output: list[bytes] = []
        errors: list[bytes] = []
        for number, line in enumerate(batch.lines):
            custom_id = line["custom_id"]
            if number >= answered:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append(_error_line(custom_id, code, f"request not run: batch {status}"))
                continue
            with self._lock:
                attempt = self._attempts[custom_id]
                self._attempts[custom_id] += 1
            if self._fails(custom_id, attempt):
                errors.append(
                    _line(custom_id, 500, {"error": {"message": "server error", "type": "server"}})
                )
                continue
            output.append(_line(custom_id, 200, self._completion(line["body"])))
        with self._lock:
            if output:
                batch.output_file_id = self._new_id("file")
                self._files[batch.output_file_id] = (f"output-{batch.id}", b"".join(output))
            if errors:
                batch.error_file_id = self._new_id("file")
                self._files[batch.error_file_id] = (f"errors-{batch.id}", b"".join(errors))
            batch.counts["completed"] = len(output)
            batch.counts["failed"] = len(errors)
            batch.status = status
            batch.finished_at = int(time.time())

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        text = self.reply()(messages)
        return completion_body(f"chatcmpl-b{next(self._ids)}", body, messages, text)

    def _fails(self, custom_id: str, attempt: int) -> bool:
        if self.fail_rate <= 0:
            return False
        digest = hashlib.sha256(f"{self.seed}|{attempt}|{custom_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fail_rate

    def _view(self, batch: _Batch) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": None
            if batch.status != "failed"
            else {"object": "list", "data": [{"code": "invalid_request", "message": self.invalid}]},
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created),
            "expires_at": int(batch.created) + 86400,
            "request_counts": dict(batch.counts),
            "metadata": None,
        }
        if batch.finished_at is not None:
            view[f"{batch.status}_at"] = batch.finished_at
        return view


def _line(custom_id: str, status: int, body: dict[str, Any]) -> bytes:
    item = {
        "id": f"batch_req_{custom_id[:12]}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": f"req_{custom_id[:8]}", "body": body},
        "error": None,
    }
    return orjson.dumps(item) + b"\n"


def _error_line(custom_id: str, code: str, message: str) -> bytes:
    item = {
        "id": f"batch_req_{custom_id[:12]}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
    return orjson.dumps(item) + b"\n"


def _file_object(file_id: str, name: str, size: int, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": int(time.time()),
        "filename": name,
        "purpose": purpose,
        "status": "processed",
    }


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


class BatchLoopbackServer(LoopbackServer):
    """The loopback server with the files and batches endpoints (`self.batches`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = BatchService(lambda: self.reply)
        """The batch API's state; its attributes set delays, faults and provider limits."""

    def _app(self) -> web.Application:
        app = super()._app()
        self.batches.add_routes(app)
        return app
