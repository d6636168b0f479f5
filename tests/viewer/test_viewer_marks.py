"""The viewer's marks, on a real run of a small judged pipeline: each row's outcome in the row
list, nested dicts diffed by key, the running totals folded into one usage line, and stage
files edited by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from masksql_pipe.viewer.server import make_app
from tests.conftest import cli, load, write_rows

JUDGED = """
from masksql_pipe.experiment import Pipeline


class Judged(Pipeline):
    def __init__(self, registry, replacement_config, flat_config_patch):
        self._registry = registry
        super().__init__({}, replacement_config, flat_config_patch)

    def stages(self):
        model = self._registry.model("echo")

        async def ask(context):
            return await model.infer([{"role": "user", "content": str(context["case"]["x"])}])

        async def check(context):
            if context["case"]["x"] < 0:
                raise ValueError("negative")
            return context["stages"]["ask"] == str(context["case"]["want"])

        return {"ask": ask, "check": check}

    def case_passed(self, row):
        return (row.get("stages") or {}).get("check")
"""

CASES = [{"id": "a", "x": 1, "want": 1}, {"id": "b", "x": 2, "want": 3}, {"id": "c", "x": -1}]


async def get(path: str, data: Path, **params: Any) -> Any:
    server = TestServer(make_app(data), host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as session:
            url = str(server.make_url(path))
            async with session.get(url, params=params) as response:
                assert response.status == 200, await response.text()
                return await response.json()
    finally:
        await server.close()


@pytest.fixture
def judged_run(tmp_path: Path) -> Path:
    """A run of the judged pipeline (made before the test's event loop starts)."""
    (tmp_path / "judged.py").write_text(JUDGED, encoding="utf-8")
    data = tmp_path / "data"
    write_rows(data / "1_input.json", CASES)
    proc = cli(
        "--data", str(data), "--pipeline", "judged:Judged", "--max-errors", "5", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    return data


async def test_row_list_marks_each_outcome(judged_run: Path) -> None:
    data = judged_run
    listing = await get("/api/rows", data, file="3_check.json")
    assert [row.get("outcome") for row in listing["rows"]] == ["passed", "failed", "error"]


async def test_journey_diffs_nested_keys_and_folds_usage(judged_run: Path) -> None:
    data = judged_run
    journey = await get("/api/journey", data, index=0)
    ask, check = journey["steps"][1], journey["steps"][2]
    assert set(ask["diff"]["added"]) == {"stages", "stage_seconds"}  # new dicts: whole
    assert set(check["diff"]["added"]) == {"stages.check", "stage_seconds.check"}
    assert check["diff"]["changed"] == {} and "removed" not in check["diff"]
    rows = load(data / "2_ask.json")
    assert ask["usage"] == {
        "total_toks": [None, rows[0]["total_toks"]],
        "total_latency": [None, rows[0]["total_latency"]],
    }
    assert "total_toks" not in ask["diff"]["added"] and check["usage"] is None


async def test_hand_edited_stage_files_are_marked(judged_run: Path) -> None:
    data = judged_run
    overview = await get("/api/overview", data)
    assert [stage["edited"] for stage in overview["stages"]] == [False, False, False]
    path = data / "2_ask.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    rows[1]["stages"]["ask"] = "3"  # a fix by hand
    path.write_text(json.dumps(rows), encoding="utf-8")
    overview = await get("/api/overview", data)
    assert [stage["edited"] for stage in overview["stages"]] == [False, True, False]
    journey = await get("/api/journey", data, index=1)
    assert [step["edited"] for step in journey["steps"]] == [False, True, False]
