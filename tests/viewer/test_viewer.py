"""The run viewer through its HTTP endpoints, against a real run folder of the MaskSQL sample.

Two real runs on a temp copy of the sample: one with the oracle models, one whose large model
is `flakey` (some rows fail). Expected values are computed here from the files themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from masksql_pipe.viewer.server import make_app
from tests.conftest import ROOT, cli, load
from tests.helpers_files import snapshot

ERROR_KEY = "pipe_error"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("viewer") / "data"
    folder.mkdir()
    for name in ("1_input.json", "tables.json"):
        shutil.copy(ROOT / "data" / name, folder / name)
    shutil.copytree(ROOT / "data" / "databases", folder / "databases")
    first = cli("--data", str(folder), "--limit", "8")
    assert first.returncode == 0, first.stderr
    second = cli("--data", str(folder), "--limit", "8", "models.llm=flakey", "--max-errors", "100")
    assert second.returncode == 0, second.stderr
    return folder


class Viewer:
    """GET requests to a real viewer server; the folder snapshot taken before the first."""

    def __init__(self, session: ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        async with self.session.get(self.base + path, params=params) as response:
            assert response.status == expect, await response.text()
            return await response.json()


@pytest.fixture
async def viewer(run_folder: Path):
    before = snapshot(run_folder)
    server = TestServer(make_app(run_folder), host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        yield Viewer(session, str(server.make_url("")))
    await server.close()
    assert snapshot(run_folder) == before, "the viewer wrote into the data folder"


def dig(row: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a row (a diff names nested fields so)."""
    value: Any = row
    for part in dotted.split("."):
        value = value[part]
    return value


def apply_diff(before: dict[str, Any], diff: dict[str, Any], usage: Any) -> dict[str, Any]:
    """``before`` with a journey step's diff (and folded usage totals) applied: must give the
    row the stage wrote, so nothing is missing from the diff and nothing is extra."""
    row = orjson.loads(orjson.dumps(before))
    changes = {**diff["added"], **{k: v["after"] for k, v in diff["changed"].items()}}
    changes.update({k: after for k, (_, after) in (usage or {}).items()})
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        target = row
        for part in parents:
            target = target[part]
        target[last] = value
    for dotted in diff.get("removed", []):
        *parents, last = dotted.split(".")
        target = row
        for part in parents:
            target = target[part]
        del target[last]
    return row


def stage_files(folder: Path) -> list[Path]:
    files = [p for p in folder.glob("*.json") if p.name.split("_")[0].isdigit()]
    return sorted(files, key=lambda p: int(p.name.split("_")[0]))


async def test_overview_counts_rows_and_errors(viewer: Viewer, run_folder: Path) -> None:
    overview = await viewer.get("/api/overview")
    files = stage_files(run_folder)
    assert [s["file"] for s in overview["stages"]] == [p.name for p in files]
    for stage, path in zip(overview["stages"], files, strict=True):
        rows = load(path)
        assert stage["rows"] == len(rows)
        assert stage["errors"] == sum(ERROR_KEY in row for row in rows)
    assert len(overview["runs"]) == 2


async def test_row_journey_diffs_errors_and_prompts(viewer: Viewer, run_folder: Path) -> None:
    last = stage_files(run_folder)[-1]
    failed = [i for i, row in enumerate(load(last)) if ERROR_KEY in row]
    assert failed, "the flakey run should leave failed rows"
    index = failed[0]
    journey = await viewer.get("/api/journey", index=index)
    files = stage_files(run_folder)
    assert [step["file"] for step in journey["steps"]] == [p.name for p in files]
    previous = None
    errors_seen = []
    runs_in_log: set[str] = set()
    two_runs = False
    for step, path in zip(journey["steps"], files, strict=True):
        rows = load(path)
        row = rows[index]
        assert step["row"] == row
        if previous is not None:
            assert apply_diff(previous, step["diff"], step.get("usage")) == row
            for key in step["diff"]["changed"]:  # nested dicts are compared key by key
                before, after = dig(previous, key), dig(row, key)
                assert before != after and not (
                    isinstance(before, dict) and isinstance(after, dict)
                )
        if "error" in step:
            errors_seen.append(step["error"])
        log = run_folder / ".masksql_pipe" / "prompts" / (path.stem + ".jsonl")
        calls = []
        if log.is_file():
            calls = [orjson.loads(line) for line in log.read_bytes().splitlines()]
        row_calls = [c for c in calls if c.get("row") == index]
        newest = [c for c in row_calls if c["run"] == row_calls[-1]["run"]] if row_calls else []
        assert step["calls"] == newest  # this row's calls in the newest run that made any
        runs_in_log.update(c["run"] for c in row_calls)
        two_runs = two_runs or len({c["run"] for c in row_calls}) > 1
        previous = row
    assert errors_seen == [load(last)[index][ERROR_KEY]]
    recorded = {
        orjson.loads(p.read_bytes())["id"]
        for p in (run_folder / ".masksql_pipe" / "runs").glob("*.json")
    }
    assert runs_in_log == recorded and two_runs  # every call names its run; both runs called
    model_calls = [c for step in journey["steps"] for c in step["calls"]]
    assert model_calls and all("prompt_tokens" in c and "latency" in c for c in model_calls)
    assert any("cached" in c for c in model_calls)


async def test_filters_failed_changed_and_search(viewer: Viewer, run_folder: Path) -> None:
    last = stage_files(run_folder)[-1]
    rows = load(last)
    listing = await viewer.get("/api/rows", file=last.name, failed="1")
    assert [r["index"] for r in listing["rows"]] == [
        i for i, row in enumerate(rows) if ERROR_KEY in row
    ]
    assert all(r["error"]["stage"] for r in listing["rows"])

    runs = sorted(
        (load(p) for p in (run_folder / ".masksql_pipe" / "runs").glob("*.json")),
        key=lambda r: r["created"],
    )
    a, b = ({c["id"]: (c["status"], c["passed"]) for c in run["cases"]} for run in runs)
    index_of = {c["id"]: c["index"] for c in runs[1]["cases"]}
    differing = sorted(index_of[case] for case in b if a.get(case) != b[case])
    assert differing, "the two runs should differ somewhere"
    listing = await viewer.get(
        "/api/rows", file=last.name, run_a=runs[0]["id"], run_b=runs[1]["id"]
    )
    assert [r["index"] for r in listing["rows"]] == differing
    assert all(r["outcomes"]["a"] != r["outcomes"]["b"] for r in listing["rows"])

    word = rows[0]["question"].split()[-1].strip("?.").upper()
    listing = await viewer.get("/api/rows", file=last.name, q=word)
    expected = [
        i for i, row in enumerate(rows) if word.casefold() in orjson.dumps(row).decode().casefold()
    ]
    assert [r["index"] for r in listing["rows"]] == expected and 0 in expected
    assert len(expected) < len(rows)


async def test_bad_requests_are_400_with_a_message(viewer: Viewer) -> None:
    for params in ({"file": "../1_input.json"}, {"file": "nope.json"}):
        body = await viewer.get("/api/rows", expect=400, **params)
        assert "no stage file" in body["error"]
    body = await viewer.get("/api/journey", expect=400, index="x")
    assert "row number" in body["error"]
    body = await viewer.get("/api/journey", expect=400, index="999")
    assert "no row 999" in body["error"]


def test_view_command_serves_the_page_on_loopback(run_folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "view", "--data", str(run_folder), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("viewer on http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[2]
        deadline = time.monotonic() + 10
        while True:
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert "/api/journey" in page and "<script>" in page
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_journey_aligns_the_input_with_start(tmp_path: Path) -> None:
    """With --start 2, row 0 of the later files is row 2 of the input file."""
    from masksql_pipe.viewer import RunFolder

    folder = tmp_path / "d"
    rows = [{"id": f"r{i}", "x": i} for i in range(6)]
    (folder).mkdir()
    (folder / "1_input.json").write_bytes(orjson.dumps(rows))
    done = cli(
        "--data", str(folder), "--pipeline", "tests.helpers_stages:CountingPipeline", "--start", "2"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    journey = RunFolder(folder).journey(0)
    assert journey["start_offset"] == 2
    assert journey["steps"][0]["row"] == rows[2]
    assert all(step["row"]["id"] == "r2" for step in journey["steps"])
