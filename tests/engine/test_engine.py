"""The core engine on real files: naming, format, resume, staleness, per-row errors."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from masksql_pipe import (
    ERROR_KEY,
    CopyTransformer,
    DeleteProp,
    FilterList,
    InputError,
    JsonListTransformer,
    LimitJson,
    Pipeline,
    RunOptions,
    SpecError,
    WholeListTransformer,
    current_row_index,
)
from masksql_pipe.engine.stage import RowCounter
from tests.conftest import load, write_rows
from tests.helpers_stages import AddNumber, Logged, side_counts


class AddOne(JsonListTransformer):
    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row["x"] = row["x"] + 1
        return row


async def test_seed_api_example(data_dir: Path) -> None:
    # The Framework.md snippet: stages in a list, Pipeline(stages), await run(input path).
    pipeline_stages = [LimitJson(), AddOne()]
    pipeline = Pipeline(pipeline_stages)
    last = await pipeline.run(data_dir / "1_input.json")
    assert last == data_dir / "3_AddOne.json"
    assert (data_dir / "2_LimitJson.json").exists()
    assert [row["x"] for row in load(last)] == list(range(1, 11))


async def test_file_names_follow_input_number(tmp_path: Path) -> None:
    write_rows(tmp_path / "5_prepared.json", [{"x": 1}])
    stages = [AddOne(), AddOne().named("Again"), AddNumber(3)]
    last = await Pipeline(stages).run(tmp_path / "5_prepared.json")
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["5_prepared.json", "6_AddOne.json", "7_Again.json", "8_AddNumber.json"]
    assert load(last) == [{"x": 3, "y": 6}]
    # bookkeeping stays in one hidden folder
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [".masksql_pipe"]


async def test_output_format_and_order_under_concurrency(tmp_path: Path) -> None:
    class Jitter(JsonListTransformer):
        async def _process_row(self, row):
            await asyncio.sleep(random.random() / 200)
            row["seen_at"] = current_row_index()
            return row

    rows = [{"name": f"Bürgermeister {i}", "b": 1, "a": 2} for i in range(40)]
    write_rows(tmp_path / "1_input.json", rows)
    last = await Pipeline([Jitter()], RunOptions(concurrency=8)).run(tmp_path / "1_input.json")
    text = last.read_text(encoding="utf-8")
    assert "Bürgermeister 0" in text  # non-ASCII unescaped
    assert text.startswith('[\n  {\n    "name": ')  # 2-space indent
    result = orjson.loads(text)
    assert [row["name"] for row in result] == [row["name"] for row in rows]
    assert [row["seen_at"] for row in result] == list(range(40))
    assert list(result[0]) == ["name", "b", "a", "seen_at"]  # key insertion order


async def test_rerun_skips_up_to_date_stages(data_dir: Path) -> None:
    side = data_dir.parent / "side.log"
    stages = [AddNumber(1), Logged(str(side))]
    await Pipeline(stages).run(data_dir / "1_input.json")
    assert len(side_counts(side)["start"]) == 10
    pipeline = Pipeline([AddNumber(1), Logged(str(side))])
    await pipeline.run(data_dir / "1_input.json")
    assert len(side_counts(side)["start"]) == 10  # nothing processed again
    assert [r.status for r in pipeline.reports] == ["up to date", "up to date"]


async def test_hand_edit_reruns_only_later_stages(data_dir: Path) -> None:
    side = data_dir.parent / "side.log"

    def make() -> list[JsonListTransformer]:
        return [AddNumber(1), AddNumber(5, field="z"), Logged(str(side))]

    await Pipeline(make()).run(data_dir / "1_input.json")
    edited = data_dir / "3_AddNumber.json"
    rows = load(edited)
    rows[4]["x"] = 400  # a researcher fixes one row by hand
    edited.write_bytes(orjson.dumps(rows))
    before_first = (data_dir / "2_AddNumber.json").read_bytes()

    pipeline = Pipeline(make())
    last = await pipeline.run(data_dir / "1_input.json")
    statuses = [r.status for r in pipeline.reports]
    assert statuses == ["up to date", "edited by hand", "ran"]
    assert (data_dir / "2_AddNumber.json").read_bytes() == before_first
    assert load(edited)[4]["x"] == 400  # the hand edit is kept, not overwritten
    assert load(last)[4]["logged"] == 4000
    assert len(side_counts(side)["start"]) == 20


async def test_parameter_change_reruns_that_stage_and_later(data_dir: Path) -> None:
    side = data_dir.parent / "side.log"
    await Pipeline([AddNumber(1), AddNumber(2, "z"), Logged(str(side))]).run(
        data_dir / "1_input.json"
    )
    pipeline = Pipeline([AddNumber(1), AddNumber(7, "z"), Logged(str(side))])
    last = await pipeline.run(data_dir / "1_input.json")
    assert [r.status for r in pipeline.reports] == ["up to date", "ran", "ran"]
    assert load(last)[3]["z"] == 10


async def test_version_bump_makes_stage_stale(data_dir: Path) -> None:
    class V(AddOne):
        version = "1"

    await Pipeline([V()]).run(data_dir / "1_input.json")
    V.version = "2"
    pipeline = Pipeline([V()])
    state = pipeline.states(data_dir / "1_input.json")[0]
    assert (state.status, state.reason) == ("stale", "changed: stage version")


async def test_force_and_from(data_dir: Path) -> None:
    side = data_dir.parent / "side.log"

    def make() -> list[JsonListTransformer]:
        return [AddNumber(1), Logged(str(side)).named("A"), Logged(str(side)).named("B")]

    await Pipeline(make()).run(data_dir / "1_input.json")
    pipeline = Pipeline(make(), RunOptions(from_number=3))
    await pipeline.run(data_dir / "1_input.json")
    assert [r.status for r in pipeline.reports] == ["up to date", "up to date", "ran"]
    pipeline = Pipeline(make(), RunOptions(force=True))
    await pipeline.run(data_dir / "1_input.json")
    assert [r.status for r in pipeline.reports] == ["ran", "ran", "ran"]
    assert len(side_counts(side)["start"]) == 10 * (2 + 1 + 2)


async def test_per_row_errors_and_retry_errors(data_dir: Path) -> None:
    side = data_dir.parent / "side.log"
    flag = data_dir.parent / "fail.flag"
    flag.write_text("fail rows divisible by 3")

    def make() -> list[JsonListTransformer]:
        return [Logged(str(side), fail_when=str(flag)), AddNumber(1)]

    pipeline = Pipeline(make())
    last = await pipeline.run(data_dir / "1_input.json")
    rows = load(last)
    failed = [i for i, row in enumerate(rows) if ERROR_KEY in row]
    assert failed == [0, 3, 6, 9]
    assert rows[3][ERROR_KEY] == {
        "stage": "Logged",
        "type": "RuntimeError",
        "message": "row 3 refused",
    }
    assert "y" not in rows[3]  # later stage passes a failed row through untouched
    assert rows[4]["y"] == 5 and len(rows) == 10  # good rows kept
    assert [r.errors for r in pipeline.reports] == [4, 0]

    flag.unlink()
    before = len(side_counts(side)["start"])
    pipeline = Pipeline(make(), RunOptions(retry_errors=True))
    last = await pipeline.run(data_dir / "1_input.json")
    retried = side_counts(side)["start"][before:]
    assert sorted(retried) == [0, 3, 6, 9]  # only the failed rows ran again
    rows = load(last)
    assert not any(ERROR_KEY in row for row in rows)
    assert rows[3]["logged"] == 30 and rows[3]["y"] == 4
    assert pipeline.reports[0].status == "retried errors"


async def test_unserializable_result_is_a_row_error(tmp_path: Path) -> None:
    class Bad(JsonListTransformer):
        async def _process_row(self, row):
            row["value"] = object() if row["x"] == 1 else row["x"]
            return row

    write_rows(tmp_path / "1_input.json", [{"x": 0}, {"x": 1}, {"x": 2}])
    last = await Pipeline([Bad()]).run(tmp_path / "1_input.json")
    rows = load(last)
    assert rows[1][ERROR_KEY]["type"] in ("TypeError", "JSONEncodeError")
    assert rows[0]["value"] == 0 and rows[2]["value"] == 2


async def test_utility_stages(tmp_path: Path) -> None:
    rows = [{"x": i, "meta": {"a": {"b": i}, "keep": True}} for i in range(6)]
    write_rows(tmp_path / "1_input.json", rows)
    stages = [
        LimitJson(start=1, limit=4),
        FilterList(lambda row: row["x"] % 2 == 1),
        CopyTransformer("meta.a.b", "copied.value"),
        DeleteProp("meta.a"),
    ]
    last = await Pipeline(stages).run(tmp_path / "1_input.json")
    assert load(last) == [
        {"x": 1, "meta": {"keep": True}, "copied": {"value": 1}},
        {"x": 3, "meta": {"keep": True}, "copied": {"value": 3}},
    ]
    assert load(tmp_path / "2_LimitJson.json") == rows[1:5]
    # DeleteProp must not reach back into earlier files' rows
    assert load(tmp_path / "4_CopyTransformer.json")[0]["meta"]["a"] == {"b": 1}


async def test_filter_function_change_makes_stage_stale(tmp_path: Path) -> None:
    write_rows(tmp_path / "1_input.json", [{"x": i} for i in range(4)])
    await Pipeline([FilterList(lambda row: row["x"] > 1)]).run(tmp_path / "1_input.json")
    pipeline = Pipeline([FilterList(lambda row: row["x"] > 2)])
    assert pipeline.states(tmp_path / "1_input.json")[0].status == "stale"


async def test_input_change_makes_first_stage_stale(data_dir: Path) -> None:
    await Pipeline([AddOne()]).run(data_dir / "1_input.json")
    write_rows(data_dir / "1_input.json", [{"x": 100}])
    pipeline = Pipeline([AddOne()])
    state = pipeline.states(data_dir / "1_input.json")[0]
    assert state.reason == "input 1_input.json changed"
    last = await pipeline.run(data_dir / "1_input.json")
    assert load(last) == [{"x": 101}]


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'[{"x": 1},\n {"x": 2,,}]', "invalid JSON at line 2, column"),
        (b'{"x": 1}', "top level is a JSON object, expected a list"),
        (b'[{"x": 1}, 7]', "row 1 is a JSON number, expected an object"),
    ],
)
async def test_bad_input_files(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "1_input.json").write_bytes(content)
    with pytest.raises(InputError) as info:
        await Pipeline([AddOne()]).run(tmp_path / "1_input.json")
    message = str(info.value)
    assert expected in message
    assert str(tmp_path / "1_input.json") in message
    assert "\n" not in message


async def test_missing_files_and_unnumbered_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        await Pipeline([AddOne()]).run(tmp_path / "1_input.json")
    with pytest.raises(InputError, match="data folder not found"):
        await Pipeline([AddOne()]).run(tmp_path / "nope" / "1_input.json")
    write_rows(tmp_path / "input.json", [{"x": 1}])
    with pytest.raises(InputError, match="not a numbered stage file"):
        await Pipeline([AddOne()]).run(tmp_path / "input.json")


async def test_bad_input_in_a_later_file_keeps_earlier_outputs(data_dir: Path) -> None:
    await Pipeline([AddOne(), AddNumber(2)]).run(data_dir / "1_input.json")
    first = (data_dir / "2_AddOne.json").read_bytes()
    (data_dir / "2_AddOne.json").write_text('[{"x": 1}')  # a hand edit gone wrong
    with pytest.raises(InputError, match=r"2_AddOne.json: invalid JSON at line 1"):
        await Pipeline([AddOne(), AddNumber(2)]).run(data_dir / "1_input.json")
    assert (data_dir / "3_AddNumber.json").exists()  # nothing computed is deleted
    assert first != (data_dir / "2_AddOne.json").read_bytes()


def test_stage_names_must_make_file_names() -> None:
    with pytest.raises(InputError, match="invalid stage name 'a/b'"):
        AddOne().named("a/b")


def test_two_stages_cannot_write_one_file(tmp_path: Path) -> None:
    # Numbers rise by one per stage, so in a chain only equal DAG node names could collide.
    nodes = [
        {"name": "A", "function": AddOne(), "inputs": []},
        {"name": "A", "function": AddNumber(), "inputs": []},
    ]
    with pytest.raises(SpecError, match="duplicate DAG node name 'A'"):
        Pipeline(nodes)
    # the same stage class twice in a list gets two numbered files
    write_rows(tmp_path / "1_input.json", [{"x": 1}])
    plan = Pipeline([AddOne(), AddOne()]).plan(tmp_path / "1_input.json")
    assert [out.name for _, _, out in plan] == ["2_AddOne.json", "3_AddOne.json"]


async def test_stage_setup_failure_runs_no_row(data_dir: Path) -> None:
    side = data_dir.parent / "side.log"

    class Broken(Logged):
        async def setup(self, run):
            raise InputError("template prompts/x.j2 not found")

    with pytest.raises(InputError, match="template"):
        await Pipeline([Broken(str(side))]).run(data_dir / "1_input.json")
    assert not side.exists()
    assert not (data_dir / "2_Broken.json").exists()


def test_output_file_mode_follows_umask(tmp_path: Path) -> None:
    write_rows(tmp_path / "1_input.json", [{"x": 1}])
    last = asyncio.run(Pipeline([AddOne()]).run(tmp_path / "1_input.json"))
    umask = os.umask(0)
    os.umask(umask)
    assert last.stat().st_mode & 0o777 == 0o666 & ~umask


async def test_rerun_keeps_a_copy_of_a_hand_edited_output(data_dir: Path) -> None:
    await Pipeline([AddNumber(1)]).run(data_dir / "1_input.json")
    out = data_dir / "2_AddNumber.json"
    rows = load(out)
    rows[0]["note"] = "checked by hand"
    write_rows(out, rows)
    edited = out.read_bytes()
    # the stage changes too: its output must be recomputed, but the edit is not thrown away
    await Pipeline([AddNumber(2)]).run(data_dir / "1_input.json")
    assert "note" not in load(out)[0]
    kept = list((data_dir / ".masksql_pipe" / "replaced").glob("2_AddNumber.*.json"))
    assert [path.read_bytes() for path in kept] == [edited]
    # a file the pipeline wrote itself is simply replaced
    await Pipeline([AddNumber(3)]).run(data_dir / "1_input.json")
    assert len(list((data_dir / ".masksql_pipe" / "replaced").iterdir())) == 1


def test_editing_a_stage_class_makes_it_stale(tmp_path: Path) -> None:
    # two runs of a real module file: the class body changes between them
    module = tmp_path / "edited_stage.py"
    source = (
        "from masksql_pipe import JsonListTransformer\n"
        "class Edited(JsonListTransformer):\n"
        "    async def _process_row(self, row):\n"
        "        row['v'] = {value}\n"
        "        return row\n"
    )
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"x": 1}])
    script = (
        "import asyncio, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from edited_stage import Edited\n"
        "from masksql_pipe import Pipeline\n"
        "p = Pipeline([Edited()])\n"
        "print(p.states(sys.argv[2])[0].status)\n"
        "asyncio.run(p.run(sys.argv[2]))\n"
    )
    import subprocess
    import sys

    def run() -> str:
        result = subprocess.run(
            [sys.executable, "-B", "-c", script, str(tmp_path), str(data / "1_input.json")],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    module.write_text(source.format(value=1))
    assert run() == "missing"
    assert run() == "up to date"
    module.write_text(source.format(value=2))
    assert run() == "stale"
    assert load(data / "2_Edited.json") == [{"x": 1, "v": 2}]


def test_dotted_paths() -> None:
    from masksql_pipe import get_path, set_path

    row = {"a": {"b": [{"c": 1}]}, "s": "text"}
    assert get_path(row, "a.b.0.c") == 1
    assert get_path(row, "a.b.1.c", "missing") == "missing"
    assert get_path(row, "") is row
    set_path(row, "a.new.deep", 2)
    assert row["a"]["new"] == {"deep": 2}
    with pytest.raises(KeyError, match="'s' is not a mapping"):
        set_path(row, "s.x", 1)
    assert row["s"] == "text"  # a value is never overwritten to make room


class Rank(WholeListTransformer):
    """Each row's rank by x among all rows: only a whole-list stage can know it."""

    async def process_list(self, rows, indices):
        order = sorted(range(len(rows)), key=lambda i: rows[i]["x"])
        for index in indices:
            row = rows[index]
            if row["x"] < 0:
                yield index, self.failed_row(row, ValueError("negative x"))
                continue
            row["rank"] = order.index(index) + 1
            yield index, row
        self.stats["ranked"] = len(indices)


async def test_a_whole_list_stage_sees_every_row_and_fails_rows_one_by_one(
    tmp_path: Path,
) -> None:
    earlier = {"stage": "Before", "type": "X", "message": "failed before"}
    rows = [{"x": 30}, {"x": -1}, {"x": 10}, {"x": 20, ERROR_KEY: earlier}]
    write_rows(tmp_path / "1_input.json", rows)
    pipeline = Pipeline([Rank()])
    out = load(await pipeline.run(tmp_path / "1_input.json"))
    assert [row.get("rank") for row in out] == [4, None, 2, 3]  # -1 ranks first, then fails
    assert out[1][ERROR_KEY]["message"] == "negative x"
    assert out[3][ERROR_KEY] == earlier  # failed earlier: still seen, its error kept
    assert pipeline.reports[0].errors == 1
    assert pipeline.reports[0].stats == {"ranked": 4}
    assert Rank.whole_list and not AddOne.whole_list
    counter, done = RowCounter(), {}  # the live progress counts the newly failed row alone
    fresh = orjson.loads(orjson.dumps(rows))
    await Rank().process_rows(fresh, range(4), done.__setitem__, counter, 1)
    assert (counter.done, counter.errors, sorted(done)) == (4, 1, [0, 1, 2, 3])
    with pytest.raises(TypeError, match="whole list"):
        await Rank()._process_row({"x": 1})


async def test_a_whole_list_stage_is_never_resumed_on_a_part_of_its_rows(tmp_path: Path) -> None:
    """Its figures cover the whole list: a retry (or a journal from a killed run) must not
    hand it only the rows still to do, or the figures it records describe a fraction."""
    rows = [{"x": 30}, {"x": -1}, {"x": 10}, {"x": 20}]
    write_rows(tmp_path / "1_input.json", rows)
    await Pipeline([Rank()]).run(tmp_path / "1_input.json")
    retry = Pipeline([Rank()], RunOptions(retry_errors=True))
    await retry.run(tmp_path / "1_input.json")
    assert retry.reports[0].stats == {"ranked": 4}
