"""Stages declaring ``processes = True`` have their rows computed by forked workers (--workers):
the same bytes, the same failed rows, the same crash safety as in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from masksql_pipe import Pipeline, RunOptions
from masksql_pipe.engine.files import read_json
from masksql_pipe.engine.lock import folder_in_use
from masksql_pipe.engine.processes import MIN_ROWS, run_in_processes
from masksql_pipe.engine.stage import RowCounter
from masksql_pipe.errors import StageFatal
from tests.conftest import ROOT, cli, load, write_rows
from tests.helpers_stages import Crunch, CrunchFiles, side_counts

ROWS = 300


def _rows(count: int = ROWS) -> list[dict]:
    rows = [{"id": i, "x": i, "text": f"Zeile {i} ü"} for i in range(count)]
    for row in rows[5::50]:  # failed in an earlier stage: passed through untouched
        row["pipe_error"] = {"stage": "Before", "type": "ValueError", "message": "earlier"}
    return rows


def _run(folder: Path, stage: Crunch, workers: int) -> Pipeline:
    options = RunOptions(progress=False, workers=workers, concurrency=4)
    engine = Pipeline([stage.named("Crunch")], options)
    asyncio.run(engine.run(folder / "1_input.json"))
    return engine


@pytest.mark.parametrize("kind", [Crunch, CrunchFiles], ids=["streamed", "whole list"])
def test_two_workers_write_the_same_bytes_as_one(tmp_path: Path, kind: type[Crunch]) -> None:
    outputs, reports = {}, {}
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        write_rows(folder / "1_input.json", _rows())
        engine = _run(folder, kind(fail_every=9, delay=0.001), workers)
        outputs[workers] = (folder / "2_Crunch.json").read_bytes()
        reports[workers] = (engine.reports[0].rows, engine.reports[0].errors)
        record = read_json(folder / ".masksql_pipe" / "stages" / "2_Crunch.json")
        assert record is not None
        assert sorted(t["row"] for t in record["tracebacks"]) == [
            i for i in range(0, ROWS, 9) if i % 50 != 5
        ]
    assert outputs[1] == outputs[2]
    assert reports[1] == reports[2] == (ROWS, len([i for i in range(0, ROWS, 9) if i % 50 != 5]))


def test_rows_run_in_other_processes(tmp_path: Path) -> None:
    write_rows(tmp_path / "1_input.json", [{"x": i} for i in range(200)])
    _run(tmp_path, CrunchFiles(pid=True), 2)
    pids = {row["pid"] for row in load(tmp_path / "2_Crunch.json")}
    assert os.getpid() not in pids
    assert len(pids) == 2


def test_one_worker_or_few_rows_stay_in_process(tmp_path: Path) -> None:
    for workers, count in ((1, 200), (2, MIN_ROWS - 1)):
        folder = tmp_path / f"{workers}_{count}"
        write_rows(folder / "1_input.json", [{"x": i} for i in range(count)])
        _run(folder, Crunch(pid=True), workers)
        assert {row["pid"] for row in load(folder / "2_Crunch.json")} == {os.getpid()}


def test_a_failing_row_is_the_same_failed_row_as_in_process(tmp_path: Path) -> None:
    failed = {}
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        write_rows(folder / "1_input.json", [{"x": i} for i in range(100)])
        _run(folder, Crunch(fail_every=10), workers)
        failed[workers] = [row for row in load(folder / "2_Crunch.json") if "pipe_error" in row]
    assert failed[2] == failed[1]
    assert failed[2][3] == {
        "x": 30,
        "pipe_error": {"stage": "Crunch", "type": "ValueError", "message": "row 30 refused"},
    }


def test_a_fatal_error_in_a_worker_stops_the_stage_as_in_process(tmp_path: Path) -> None:
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        write_rows(folder / "1_input.json", [{"x": i} for i in range(200)])
        with pytest.raises(StageFatal, match="row 150: every row would fail"):
            _run(folder, Crunch(fatal_on=150), workers)
        assert not (folder / "2_Crunch.json").exists()


SCRIPT = """
import asyncio, sys
from tests.helpers_stages import Crunch, CrunchFiles
from masksql_pipe import Pipeline, RunOptions
data, side, kind = sys.argv[1], sys.argv[2], sys.argv[3]
kinds = {"Crunch": Crunch, "CrunchFiles": CrunchFiles}
stage = kinds[kind](fail_every=11, side_file=side, delay=0.01).named("Crunch")
options = RunOptions(concurrency=4, progress=False, workers=2)
asyncio.run(Pipeline([stage], options).run(data + "/1_input.json"))
"""


def _start(data: Path, side: Path, kind: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(data), str(side), kind],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("kind", ["Crunch", "CrunchFiles"], ids=["streamed", "whole list"])
def test_kill_9_with_workers_then_rerun_gives_the_same_bytes(tmp_path: Path, kind: str) -> None:
    data, side = tmp_path / "data", tmp_path / "side.log"
    write_rows(data / "1_input.json", _rows())
    proc = _start(data, side, kind)
    deadline = time.monotonic() + 60
    while len(side_counts(side)["end"]) < 100:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not (data / "2_Crunch.json").exists()
    workers = {int(line.split()[1]) for line in side.read_text().splitlines() if "pid" in line}
    assert proc.pid not in workers and len(workers) == 2
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers):  # the kernel kills them with their parent
        assert time.monotonic() < deadline, "a worker outlived the killed run"
        time.sleep(0.01)

    rerun = _start(data, side, kind)
    _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr.decode()
    clean = tmp_path / "clean"
    write_rows(clean / "1_input.json", _rows())
    done = _start(clean, tmp_path / "clean.log", kind)
    _, stderr = done.communicate(timeout=120)
    assert done.returncode == 0, stderr.decode()
    assert (data / "2_Crunch.json").read_bytes() == (clean / "2_Crunch.json").read_bytes()
    assert not list((data / ".masksql_pipe" / "journal").glob("*"))


HANGING = """
import asyncio, sys
from tests.helpers_stages import Crunch
from masksql_pipe import Pipeline, RunOptions
data, side = sys.argv[1], sys.argv[2]
stage = Crunch(side_file=side, hang_on=40)
asyncio.run(Pipeline([stage], RunOptions(progress=False, workers=2)).run(data + "/1_input.json"))
"""


def test_a_busy_worker_dies_with_the_killed_run(tmp_path: Path) -> None:
    """A worker blocked in a row when its run is killed goes too: none is left holding the
    folder's writer lock, so the rerun can start at once."""
    data, side = tmp_path / "data", tmp_path / "side.log"
    write_rows(data / "1_input.json", [{"x": i} for i in range(100)])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGING, str(data), str(side)], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while 40 not in side_counts(side)["start"]:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    workers = {int(line.split()[1]) for line in side.read_text().splitlines() if "pid" in line}
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived the killed run"
        time.sleep(0.01)
    assert not folder_in_use(data)


def test_progress_counts_match_in_process() -> None:
    """The counters the progress display reads end as in-process: done, errors, passed."""

    async def count(workers: int) -> tuple[int, int, int, list[int]]:
        stage, counter, seen = Crunch(fail_every=4), RowCounter(), []
        pairs = ((i, row) for i, row in enumerate(_rows(200)))
        await run_in_processes(stage, pairs, lambda i, _row: seen.append(i), counter, 4, workers)
        return counter.done, counter.errors, counter.passed, sorted(seen)

    assert asyncio.run(count(2)) == asyncio.run(count(1))
    assert asyncio.run(count(2))[:3] == (200, 50, 4)


def test_cli_workers_reach_the_stage(tmp_path: Path) -> None:
    write_rows(tmp_path / "1_input.json", [{"x": i} for i in range(100)])
    pipe = ["--pipeline", "tests.helpers_stages:CrunchPipeline", "--no-progress"]
    done = cli("--data", str(tmp_path), *pipe, "--workers", "2")
    assert done.returncode == 0, done.stderr
    output = tmp_path / "2_Crunch.json"
    assert len({row["pid"] for row in load(output)}) == 2
    done = cli("--data", str(tmp_path), *pipe, "--workers", "1", "--force")
    assert done.returncode == 0, done.stderr
    assert len({row["pid"] for row in load(output)}) == 1


@pytest.mark.parametrize("value", ["0", "two", "1.5"])
def test_bad_workers_value_is_one_error_line_and_exit_2(tmp_path: Path, value: str) -> None:
    write_rows(tmp_path / "1_input.json", [{"x": 1}])
    for command in (["run"], ["rerun", "latest"]):
        done = cli(*command, "--data", str(tmp_path), "--workers", value)
        assert done.returncode == 2
        errors = [line for line in done.stderr.splitlines() if line.lower().startswith("error")]
        assert len(errors) == 1 and "--workers" in errors[0], done.stderr
    assert not (tmp_path / "2_Crunch.json").exists()
    assert orjson.loads((tmp_path / "1_input.json").read_bytes()) == [{"x": 1}]
