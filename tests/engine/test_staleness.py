"""Results you can trust: one writer per folder, journals that cannot mix runs, records that
cannot mislead, staleness that sees code and external files, input corners (real files and
real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from masksql_pipe.engine.journal import RowJournal
from tests.conftest import ROOT, cli, load, write_rows
from tests.helpers_stages import side_counts

PIPE = ["--pipeline", "tests.helpers_stages:CountingPipeline"]


def _env(extra_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    paths = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _start_run(data: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--data", str(data), *PIPE, *extra],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- one writer per data folder ------------------------------------------------------------------


def test_a_second_writer_stops_at_once_naming_folder_and_holder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"x": i} for i in range(60)])
    side = tmp_path / "side.log"
    first = _start_run(data, f"log.side_file={side}", "log.delay=0.05", "--concurrency", "2")
    try:
        deadline = time.monotonic() + 60
        while not side_counts(side)["start"]:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.02)
        second = cli("--data", str(data), *PIPE, f"log.side_file={side}", "--limit", "5")
        assert second.returncode == 2
        lines = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert str(data) in lines[0] and f"pid {first.pid}" in lines[0]
        # readers need no lock
        status = cli("status", "--data", str(data), *PIPE, f"log.side_file={side}")
        assert status.returncode == 0, status.stderr
    finally:
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    # the first run's result is whole: the refused run changed nothing
    assert len(load(data / "4_Logged.json")) == 60
    assert not (data / ".masksql_pipe" / "write.lock.pid").exists()
    again = cli("--data", str(data), *PIPE, f"log.side_file={side}")
    assert again.returncode == 0, again.stderr  # the lock went with its holder


# -- journals -------------------------------------------------------------------------------------


def _journal(path: Path, fingerprint: str, rows: range) -> RowJournal:
    journal = RowJournal(path, {"stage": "2_X", "fingerprint": fingerprint, "input": "d"})
    journal.open(keep=path.exists())
    for index in rows:
        journal.append(index, {"x": index, "by": fingerprint})
        journal.flush()
    journal.close()
    return journal


def test_journal_lines_of_another_run_or_damaged_are_never_used(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine.jsonl", tmp_path / "other.jsonl"
    _journal(mine, "A", range(0, 5))
    _journal(other, "B", range(5, 10))
    # a second configuration's lines end up in the same file (two writers, no lock)
    with mine.open("ab") as handle:
        handle.write(b"".join(other.read_bytes().splitlines(keepends=True)[1:]))
    journal = RowJournal(mine, {"stage": "2_X", "fingerprint": "A", "input": "d"})
    rows = journal.load()
    assert sorted(rows) == [0, 1, 2, 3, 4] and journal.rejected == 5
    assert all(row["by"] == "A" for row in rows.values())
    # a line damaged on disk, still valid JSON: the checksum catches it
    data = mine.read_bytes().replace(b'"x":3,', b'"x":8,')
    mine.write_bytes(data)
    assert sorted(journal.load()) == [0, 1, 2, 4]


# -- records and temp files ----------------------------------------------------------------------


def test_a_malformed_record_is_named_ignored_and_the_stage_reruns(data_dir: Path) -> None:
    side = f"log.side_file={data_dir.parent / 'side.log'}"
    assert cli("--data", str(data_dir), *PIPE, side).returncode == 0
    record_file = data_dir / ".masksql_pipe" / "stages" / "3_AddNumber.json"
    record = load(record_file)
    record["rows"] = "many"  # digests right, a field wrong
    record_file.write_bytes(orjson.dumps(record))
    result = cli("--data", str(data_dir), *PIPE, side)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warning = [line for line in result.stderr.splitlines() if str(record_file) in line]
    assert warning and "'rows' is not a count" in warning[0]
    assert isinstance(load(record_file)["rows"], int)  # rewritten by the rerun
    status = cli("status", "--data", str(data_dir), *PIPE, side)
    assert "3_AddNumber.json" in status.stdout and "stale" not in status.stdout


KILL_AFTER_RENAME = """
import asyncio, os, sys
import masksql_pipe.engine.pipeline as engine
from tests.helpers_stages import AddNumber
from masksql_pipe import Pipeline, RunOptions
def killed(*args):
    os._exit(9)  # the process dies after the rename, before the record is promoted
engine.promote = killed
asyncio.run(Pipeline([AddNumber(1)], RunOptions(progress=False)).run(sys.argv[1]))
"""


def test_a_kill_between_rename_and_record_is_not_taken_for_a_hand_edit(data_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_RENAME, str(data_dir / "1_input.json")],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 9, proc.stderr
    output = data_dir / "2_AddNumber.json"
    assert output.exists()
    written = output.read_bytes()
    script = (
        "import asyncio, sys\n"
        "from tests.helpers_stages import AddNumber\n"
        "from masksql_pipe import Pipeline, RunOptions\n"
        "p = Pipeline([AddNumber(1)], RunOptions(progress=False))\n"
        "print(p.states(sys.argv[1])[0].status)\n"
        "asyncio.run(p.run(sys.argv[1]))\n"
        "print(p.reports[0].status)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data_dir / "1_input.json")],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["up", "to", "date", "up", "to", "date"]
    assert not (data_dir / ".masksql_pipe" / "replaced").exists()
    assert output.read_bytes() == written
    assert not list((data_dir / ".masksql_pipe" / "stages").glob("*.pending.json"))


def test_leftover_temp_files_are_removed_by_the_next_run(data_dir: Path) -> None:
    leftover = data_dir / ".3_AddNumber.json.x1y2z3.tmp"
    leftover.write_bytes(b"[" * 1000)
    record_tmp = data_dir / ".masksql_pipe" / "stages" / ".3_AddNumber.json.abc.tmp"
    record_tmp.parent.mkdir(parents=True)
    record_tmp.write_bytes(b"{")
    run_tmp = data_dir / ".masksql_pipe" / "runs" / ".20260101-000000-abcdef.json.q1w2.tmp"
    run_tmp.parent.mkdir(parents=True)
    run_tmp.write_bytes(b"{")
    report_tmp = data_dir / ".report.html.e4r5.tmp"
    report_tmp.write_bytes(b"<html")
    result = cli("--data", str(data_dir), *PIPE, f"log.side_file={data_dir.parent / 's.log'}")
    assert result.returncode == 0, result.stderr
    assert not leftover.exists() and not record_tmp.exists()
    assert not run_tmp.exists() and not report_tmp.exists()
    assert str(leftover) in result.stderr


# -- input corners -------------------------------------------------------------------------------


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_pipe_error_that_is_not_an_object_is_one_line(data_dir: Path) -> None:
    rows = [{"x": 0}, {"x": 1, "pipe_error": "boom"}]
    write_rows(data_dir / "1_input.json", rows)
    line = _one_error_line(cli("--data", str(data_dir), *PIPE))
    assert "1_input.json" in line and "row 1" in line and "pipe_error" in line
    assert load(data_dir / "1_input.json") == rows


def test_invalid_utf8_is_reported_where_it_is(data_dir: Path) -> None:
    path = data_dir / "1_input.json"
    path.write_bytes(b'[\n  {"x": 1},\n  {"x": 2, "t": "ab\xffc"}\n]\n')
    line = _one_error_line(cli("--data", str(data_dir), *PIPE))
    assert "line 3, column 20" in line and "UTF-8" in line


def test_too_deep_nesting_stops_the_stage_and_loses_nothing(data_dir: Path) -> None:
    deep: list = []
    for _ in range(300):
        deep = [deep]
    rows = [{"x": i} for i in range(6)]
    rows[4]["deep"] = deep
    (data_dir / "1_input.json").write_text(__import__("json").dumps(rows))
    side = f"log.side_file={data_dir.parent / 'side.log'}"
    line = _one_error_line(cli("--data", str(data_dir), *PIPE, side))
    assert "row 4" in line and "'deep'" in line and "254" in line
    assert not (data_dir / "3_AddNumber.json").exists()  # no file with the field dropped
    rows[4]["deep"] = [[1]]
    write_rows(data_dir / "1_input.json", rows)
    assert cli("--data", str(data_dir), *PIPE, side).returncode == 0
    assert load(data_dir / "4_Logged.json")[4]["deep"] == [[1]]


def test_missing_schema_file_stops_masksql_before_the_first_stage(tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "spider"
    data.mkdir()
    shutil.copy(ROOT / "data" / "1_input.json", data / "1_input.json")
    shutil.copytree(ROOT / "data" / "databases", data / "databases")
    line = _one_error_line(cli("--data", str(data), "--limit", "2"))
    assert "tables.json" in line and "not found" in line
    assert sorted(p.name for p in data.glob("*.json")) == ["1_input.json"]
    shutil.copy(ROOT / "data" / "tables.json", data / "tables.json")
    shutil.rmtree(data / "databases")
    line = _one_error_line(cli("--data", str(data), "--limit", "2"))
    assert "databases" in line and "folder not found" in line


# -- staleness: code and external files ----------------------------------------------------------

HELPER = "def amount():\n    return {value}\n"
STAGE = """
from masksql_pipe import JsonListTransformer
from mytool.helper import amount


class AddAmount(JsonListTransformer):
    async def _process_row(self, row):
        row["y"] = row["x"] + amount()
        return row
"""
STATES = """
import asyncio, sys
from mytool.stage import AddAmount
from masksql_pipe import Pipeline, RunOptions
p = Pipeline([AddAmount()], RunOptions(progress=False))
if sys.argv[2] == "run":
    asyncio.run(p.run(sys.argv[1]))
for state in p.states(sys.argv[1]):
    print(state.status, "|", state.reason)
"""


def test_editing_a_helper_module_makes_the_stage_that_imports_it_stale(
    data_dir: Path, tmp_path: Path
) -> None:
    package = tmp_path / "code" / "mytool"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text(HELPER.format(value=1))
    (package / "stage.py").write_text(STAGE)

    def states(mode: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", STATES, str(data_dir / "1_input.json"), mode],
            env=_env(tmp_path / "code"),
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert states("run").startswith("up to date")
    (package / "helper.py").write_text(HELPER.format(value=2))
    assert states("status") == "stale | changed: code of mytool.helper"
    states("run")
    assert load(data_dir / "2_AddAmount.json")[3]["y"] == 5


@pytest.fixture
def spider(tmp_path: Path) -> Path:
    import shutil

    data = tmp_path / "spider"
    data.mkdir()
    for name in ("1_input.json", "tables.json"):
        shutil.copy(ROOT / "data" / name, data / name)
    shutil.copytree(ROOT / "data" / "databases", data / "databases")
    return data


def test_changed_database_makes_execution_and_scoring_stale(spider: Path) -> None:
    import sqlite3

    assert cli("--data", str(spider), "--limit", "3").returncode == 0
    db = spider / "databases" / "music_festival" / "music_festival.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM singer")
    result = cli("status", "--data", str(spider))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if ".json" in line}
    assert "up to date" in lines["13_AddConcreteSql.json"]
    for name in ("14_ExecuteConcreteSql.json", "16_CalcExecAcc.json"):
        assert "stale" in lines[name] and "music_festival.sqlite changed" in lines[name]
    assert "will rerun" in lines["17_AddInferenceAttack.json"]
    assert "after 14_ExecuteConcreteSql" in lines["17_AddInferenceAttack.json"]
    assert cli("--data", str(spider), "--limit", "3").returncode in (0, 1)
    scored = load(spider / "16_CalcExecAcc.json")
    singers = [r for r in scored if r["db_id"] == "music_festival" and "singer" in r["query"]]
    assert singers and all(r["gold_result"]["row_count"] in (0, 1) for r in singers)


def test_latest_warns_when_a_newer_run_log_is_unreadable(data_dir: Path) -> None:
    side = f"log.side_file={data_dir.parent / 'side.log'}"
    assert cli("--data", str(data_dir), *PIPE, side).returncode == 0
    time.sleep(1.1)  # run ids name the second
    assert cli("--data", str(data_dir), *PIPE, side, "--force").returncode == 0
    runs = sorted((data_dir / ".masksql_pipe" / "runs").glob("*.json"))
    assert len(runs) == 2
    older, newer = runs
    newer.write_bytes(newer.read_bytes()[:200])  # cut short by a full disk
    result = cli("summarize", "latest", "--data", str(data_dir))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if str(newer) in line]
    assert warnings and "newer" in " ".join(warnings) and older.stem in " ".join(warnings)
    assert older.stem in result.stdout
    older.write_bytes(orjson.dumps({**load(older), "cases": "none"}))  # wrong type
    result = cli("history", "--data", str(data_dir))
    assert "'cases'" in result.stderr and str(older) in result.stderr
    assert "Traceback" not in result.stderr


KILL_INSIDE_WRITE = """
import asyncio, os, sys
from tests.helpers_stages import AddNumber
from masksql_pipe import Pipeline, RunOptions
real_fdopen = os.fdopen


class HalfThenDie:
    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        os._exit(9)  # killed halfway through writing the stage file


def fdopen(fd, *args, **kwargs):
    handle = real_fdopen(fd, *args, **kwargs)
    target = os.readlink(f"/proc/self/fd/{fd}")
    if "2_AddNumber.json" in target and "/.masksql_pipe/" not in target:
        return HalfThenDie(handle)
    return handle


os.fdopen = fdopen


class WholeList(AddNumber):
    whole_list = True  # read and written whole, through write_atomic


stage = WholeList(1).named("AddNumber")
asyncio.run(Pipeline([stage], RunOptions(progress=False)).run(sys.argv[1]))
"""

KILL_INSIDE_STREAMED_WRITE = """
import asyncio, os, sys
import masksql_pipe.engine.partial as partial
from tests.helpers_stages import AddNumber
from masksql_pipe import Pipeline, RunOptions
real_write_all = partial._write_all


def write_all(fd, data):
    if data == b"\\n]\\n":  # the list's end, after every row
        real_write_all(fd, data[:1])
        os._exit(9)  # killed halfway through writing the stage file
    real_write_all(fd, data)


partial._write_all = write_all
asyncio.run(Pipeline([AddNumber(1)], RunOptions(progress=False)).run(sys.argv[1]))
"""


@pytest.mark.parametrize("script", [KILL_INSIDE_WRITE, KILL_INSIDE_STREAMED_WRITE])
def test_a_kill_inside_the_write_leaves_no_file_that_looks_finished(
    data_dir: Path, script: str
) -> None:
    write_rows(data_dir / "1_input.json", [{"x": i, "text": "y" * 200} for i in range(500)])
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data_dir / "1_input.json")],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 9, proc.stderr
    output = data_dir / "2_AddNumber.json"
    assert not output.exists(), "half a stage file under its final name"
    # the cut write is a hidden temp file, or the stage's partial output in the bookkeeping
    partial = data_dir / ".masksql_pipe" / "journal" / "2_AddNumber.partial"
    assert list(data_dir.glob(".2_AddNumber.json.*.tmp")) or partial.exists()
    script = (
        "import asyncio, sys\n"
        "from tests.helpers_stages import AddNumber\n"
        "from masksql_pipe import Pipeline, RunOptions\n"
        "asyncio.run(Pipeline([AddNumber(1)], RunOptions(progress=False)).run(sys.argv[1]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data_dir / "1_input.json")],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert [row["y"] for row in load(output)] == [i + 1 for i in range(500)]
    assert not list(data_dir.glob(".*.tmp")) and not partial.exists()


def test_a_name_imported_from_a_package_pulls_in_only_its_defining_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from masksql_pipe.engine.fingerprints import module_closure

    package = tmp_path / "closuretool"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text(HELPER.format(value=1))
    (package / "stage.py").write_text(STAGE.replace("mytool", "closuretool"))
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("closuretool.stage")
    covered = module_closure("closuretool.stage")
    assert {"closuretool.stage", "closuretool.helper", "masksql_pipe.engine.stage"} <= set(covered)
    # the package's lazy __init__ re-exports the engine; only the defining module counts
    assert "masksql_pipe.engine.pipeline" not in covered and "masksql_pipe" not in covered
