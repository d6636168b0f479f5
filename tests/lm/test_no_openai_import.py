"""The default sender and the offline models never import `openai` (0.7-0.9 s a process).

Each check runs real model stages in a fresh interpreter (a subprocess: the test process has
imported `openai` already) against the loopback server, through faults, a refused key and a
server that is down, then reports whether `openai` (or its `httpx2`) got imported, or rich
(only a progress bar on a terminal needs it) or jinja2 (only a template needs it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import asyncio, sys
from pathlib import Path
from masksql_pipe.engine.pipeline import Pipeline
from masksql_pipe.engine.stage import ERROR_KEY, RunOptions
from masksql_pipe.errors import ModelError
from masksql_pipe.lm.registry import ModelRegistry
from masksql_pipe.loopback.server import LoopbackServer
from tests.lm_fixtures import Ask, questions, read_rows, registry_for, write_input

folder = Path(sys.argv[1])
MODE = sys.argv[2]


def short(message):
    return message.split(": ", 1)[-1][:30]


async def stage(name, registry, rows=20):
    data = folder / name
    path = write_input(data, questions(rows))
    options = RunOptions(registry=registry, progress=False, concurrency=8)
    try:
        await Pipeline([Ask("answer", "loop")], options).run(path)
        out = read_rows(data / "2_Ask.json")
        said = sorted({short(r[ERROR_KEY]["message"]) if ERROR_KEY in r else "ok" for r in out})
    except ModelError as exc:
        said = [short(str(exc))]
    await registry.aclose()
    print(name, said)


async def remote():
    with LoopbackServer(fault_rate=0.3, seed=7, retry_after=0.01, hang_seconds=2) as srv:
        await stage("faults", registry_for(srv, timeout=0.3, max_retries=6))
    with LoopbackServer(fault_rate=1.0, fault_kinds=["500"], retry_after=0.01) as srv:
        await stage("failing", registry_for(srv, max_retries=1))
    with LoopbackServer(api_key="the-right-key") as srv:
        await stage("refused", registry_for(srv))
    with LoopbackServer(faults=["hang"] * 4, hang_seconds=2) as srv:
        await stage("timeout", registry_for(srv, timeout=0.2, max_retries=0), rows=2)
    await stage("down", registry_for(srv, max_retries=0), rows=2)  # the server is gone


async def offline():
    for name in ("perfect", "echo", "flakey"):
        registry = ModelRegistry({}, {})
        data = folder / name
        path = write_input(data, questions(20))
        options = RunOptions(registry=registry, progress=False)
        await Pipeline([Ask("answer", name)], options).run(path)
        print(name, len(read_rows(data / "2_Ask.json")))


asyncio.run(remote() if MODE == "remote" else offline())
print("IMPORTED=" + ",".join(m for m in ("openai", "httpx2", "rich", "jinja2") if m in sys.modules))
"""


def run_fresh(mode: str, folder: Path) -> list[str]:
    """Run PROGRAM in MODE in a new interpreter; its output lines (the last names imports)."""
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(folder), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_direct_model_stages_never_import_openai(tmp_path: Path) -> None:
    lines = run_fresh("remote", tmp_path)
    assert lines[-1] == "IMPORTED="
    said = dict(line.split(" ", 1) for line in lines[:-1])
    assert said["faults"] == "['ok']"  # every fault retried away
    assert "HTTP 500" in said["failing"]
    assert "HTTP 401" in said["refused"]
    assert "no answer from" in said["timeout"]
    assert "cannot connect" in said["down"]


def test_offline_model_stages_never_import_openai(tmp_path: Path) -> None:
    lines = run_fresh("offline", tmp_path)
    assert lines == ["perfect 20", "echo 20", "flakey 20", "IMPORTED="]
