"""Crash safety: kill -9 a real subprocess mid-stage, rerun, and compare with a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.conftest import ROOT, cli, write_rows
from tests.helpers_stages import side_counts

SCRIPT = """
import asyncio, sys
from tests.helpers_stages import AddNumber, Logged
from masksql_pipe import Pipeline, RunOptions
data, side = sys.argv[1], sys.argv[2]
stages = [AddNumber(1), Logged(side, delay=0.01)]
asyncio.run(Pipeline(stages, RunOptions(concurrency=4, progress=False)).run(data + "/1_input.json"))
"""

ROWS = 300


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    return env


def _start(data: Path, side: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(data), str(side)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(side: Path, ended: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(side_counts(side)["end"]) < ended:
        if proc.poll() is not None:
            stderr = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(stderr if isinstance(stderr, str) else stderr.decode())
        assert time.monotonic() < deadline, "subprocess made no progress"
        time.sleep(0.01)


def _killed_mid_run(data: Path, side: Path, rows: list[dict], ended: int) -> Path:
    """Write the input, start the run, kill -9 it once `ended` rows finished; its journal."""
    write_rows(data / "1_input.json", rows)
    proc = _start(data, side)
    _wait_for(side, ended, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return data / ".masksql_pipe" / "journal" / "3_Logged.partial"


def _journaled(partial: Path) -> set[int]:
    """Rows the partial output holds: its index lists each batch written ("crc [first, count,
    end offset, crc]"), and the batch's bytes must be in the file."""
    size = partial.stat().st_size
    done = set()
    for line in partial.with_suffix(".index").read_bytes().splitlines():
        first, count, end, _crc = orjson.loads(line.split(b" ", 1)[1])
        if end <= size:
            done.update(range(first, first + count))
    return done


def test_kill_9_mid_stage_then_resume(tmp_path: Path) -> None:
    rows = [{"id": i, "x": i, "text": f"Zeile {i} ü"} for i in range(ROWS)]
    data = tmp_path / "data"
    write_rows(data / "1_input.json", rows)
    side = tmp_path / "side.log"

    proc = _start(data, side)
    _wait_for(side, 100, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    output = data / "3_Logged.json"
    journal = data / ".masksql_pipe" / "journal" / "3_Logged.partial"
    assert not output.exists(), "a killed stage must not leave a file that looks finished"
    done_before = _journaled(journal)
    assert len(done_before) >= 90
    first_run = side_counts(side)

    proc = _start(data, side)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()

    second_run_starts = side_counts(side)["start"][len(first_run["start"]) :]
    # completed rows are not processed again; every other row is processed exactly once
    assert set(second_run_starts).isdisjoint(done_before)
    assert sorted(second_run_starts) == sorted(set(range(ROWS)) - done_before)
    assert not journal.exists()

    clean = tmp_path / "clean"
    write_rows(clean / "1_input.json", rows)
    proc = _start(clean, tmp_path / "clean_side.log")
    proc.communicate(timeout=120)
    assert output.read_bytes() == (clean / "3_Logged.json").read_bytes()


def test_torn_journal_line_is_tolerated(tmp_path: Path) -> None:
    data, side = tmp_path / "data", tmp_path / "side.log"
    journal = _killed_mid_run(data, side, [{"x": i} for i in range(20)], ended=8)
    done_before = _journaled(journal)
    with journal.open("ab") as handle:  # a write cut short by the crash
        handle.write(b',\n  {\n    "x": 19,\n    "y": 20,\n    "logg')
    proc = _start(data, side)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()
    result = orjson.loads((data / "3_Logged.json").read_bytes())
    assert [row["logged"] for row in result] == [i * 10 for i in range(20)]
    assert 19 not in done_before


def test_ctrl_c_exits_cleanly_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"id": i, "x": i} for i in range(200)])
    side = tmp_path / "side.log"
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    args = [
        sys.executable,
        str(ROOT / "main.py"),
        "--data",
        str(data),
        "--pipeline",
        "tests.helpers_stages:CountingPipeline",
        f"log.side_file={side}",
        "log.delay=0.02",
        "--concurrency",
        "2",
    ]
    proc = subprocess.Popen(
        args,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background jobs ignore SIGINT; a terminal user's process does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for(side, 20, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    last_line = stderr.strip().splitlines()[-1]
    assert "interrupted in stage 4_Logged" in last_line and "to resume" in last_line
    assert "Traceback" not in stderr
    first = side_counts(side)
    assert len(first["end"]) >= 20
    result = cli(*args[2:])  # the same command again
    assert result.returncode == 0, result.stderr
    assert "resumed" in result.stderr
    second = side_counts(side)["start"][len(first["start"]) :]
    # the journal was flushed on Ctrl-C: exactly the unfinished rows run again
    assert sorted(second) == sorted(set(range(200)) - set(first["end"]))


def test_damaged_journal_lines_are_named_and_their_rows_run_again(tmp_path: Path) -> None:
    data, side = tmp_path / "data", tmp_path / "side.log"
    journal = _killed_mid_run(data, side, [{"x": i} for i in range(40)], ended=12)
    first_batch = journal.with_suffix(".index").read_bytes().split(b"\n")[0]
    first, count, _end, _crc = orjson.loads(first_batch.split(b" ", 1)[1])
    damaged = set(range(first, first + count))  # the rows of the first batch, altered on disk
    journal.write_bytes(journal.read_bytes().replace(b'"logged":', b'"lagged":', 1))
    proc = _start(data, side)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()
    warning = [line for line in stderr.decode().splitlines() if str(journal) in line]
    assert warning and "ignored" in warning[0]
    result = orjson.loads((data / "3_Logged.json").read_bytes())
    assert [row["logged"] for row in result] == [i * 10 for i in range(40)]
    assert not any("lagged" in row for row in result)
    starts = side_counts(side)["start"]
    assert damaged and all(starts.count(index) == 2 for index in damaged)  # processed again
