"""The viewer's web server: a JSON API over a RunFolder and one self-contained HTML page.

aiohttp.web (already a dependency, for the loopback test server): async, small, no new
package. It listens on 127.0.0.1 only and serves GET requests only; nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from masksql_pipe.errors import InputError
from masksql_pipe.viewer.run_folder import RunFolder

HOST = "127.0.0.1"
"""Loopback only: the page shows prompts and data that must not leave the machine."""

FOLDER = web.AppKey("folder", RunFolder)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad input (unknown file, row, run) is a 400 with the one-line message, as JSON."""
    try:
        return await handler(request)
    except InputError as exc:
        return _json({"error": str(exc)}, status=400)


def _int(request: web.Request, name: str) -> int:
    text = request.query.get(name, "")
    try:
        return int(text)
    except ValueError:
        raise InputError(f"query parameter {name!r} must be a row number, got {text!r}") from None


async def _page(request: web.Request) -> web.Response:
    html = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    return web.Response(text=html, content_type="text/html")


async def _overview(request: web.Request) -> web.Response:
    folder = request.app[FOLDER]
    return _json(await asyncio.to_thread(folder.overview))


async def _rows(request: web.Request) -> web.Response:
    """?file=N_X.json [&failed=1] [&q=text] [&run_a=ID&run_b=ID]"""
    folder = request.app[FOLDER]
    query = request.query
    file = query.get("file") or (folder.stage_files() or [Path("")])[-1].name
    changed = None
    if query.get("run_a") and query.get("run_b"):
        changed = (query["run_a"], query["run_b"])
    listing = await asyncio.to_thread(
        folder.row_list,
        file,
        failed=query.get("failed") in ("1", "true"),
        search=query.get("q", ""),
        changed=changed,
    )
    return _json(listing)


async def _journey(request: web.Request) -> web.Response:
    """?index=N: the row through every stage, with its model calls and errors."""
    folder = request.app[FOLDER]
    return _json(await asyncio.to_thread(folder.journey, _int(request, "index")))


def make_app(data: Path) -> web.Application:
    """The viewer application over the dataset folder ``data``."""
    app = web.Application(middlewares=[_errors])
    app[FOLDER] = RunFolder(Path(data))
    app.router.add_get("/", _page)
    app.router.add_get("/api/overview", _overview)
    app.router.add_get("/api/rows", _rows)
    app.router.add_get("/api/journey", _journey)
    return app


async def serve(data: Path, port: int, ready: Callable[[str], None]) -> None:
    """Serve until cancelled; ``ready(url)`` is called once the port is bound."""
    runner = web.AppRunner(make_app(data), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    bound = runner.addresses[0][1]  # the port the system chose when given 0
    ready(f"http://{HOST}:{bound}/")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
