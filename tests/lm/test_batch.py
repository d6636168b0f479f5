"""Batch mode end to end on the loopback server's files and batches endpoints (real client)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from masksql_pipe.engine.files import bookkeeping_dir
from masksql_pipe.engine.pipeline import Pipeline
from masksql_pipe.engine.stage import ERROR_KEY, RunOptions
from masksql_pipe.errors import ConfigError
from masksql_pipe.lm.batch import BatchRunner, parse_batch
from masksql_pipe.lm.model_entries import BatchSettings
from tests.lm_fixtures import SECRET, Ask, questions, read_rows, registry_for, write_input
from tests.loopback_batch import BatchLoopbackServer

FAST = BatchSettings(poll_seconds=0.02, max_poll_seconds=0.1)


def run_batch(data: Path, srv: BatchLoopbackServer, **options: object) -> Pipeline:
    registry = registry_for(srv, batch=options.pop("settings", FAST))
    engine = Pipeline(
        [Ask("answer", "loop")],
        RunOptions(concurrency=8, progress=False, registry=registry, **options),  # type: ignore[arg-type]
    )

    async def go() -> None:
        try:
            await engine.run(data)
        finally:
            await registry.aclose()

    asyncio.run(go())
    return engine


def expected_answers(n: int) -> list[str]:
    return [f"Q: {q['question']}" for q in questions(n)]


def test_batch_answers_every_row_with_one_batch_and_no_live_calls(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(30))
    with BatchLoopbackServer() as srv:
        engine = run_batch(data, srv)
        assert srv.batches.counts["create"] == 1
        assert srv.batches.counts["upload"] == 1
        assert srv.batches.batch_sizes == [30]
        assert srv.requests == 0  # nothing went to /chat/completions
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert [r["answer"] for r in rows] == expected_answers(30)
    assert not any(ERROR_KEY in r for r in rows)
    stats = engine.reports[0].stats
    assert stats["calls"] == 30 and stats["cache_hits"] == 0
    assert stats["batches"][0]["status"] == "completed"
    record = json.loads((bookkeeping_dir(tmp_path / "data") / "batches" / "2_Ask.json").read_text())
    assert [b["state"] for b in record["batches"]] == ["collected"]
    log = bookkeeping_dir(tmp_path / "data") / "prompts" / "2_Ask.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 30 and all(line["batch"] is True for line in lines)


def test_rerun_uses_the_cache_and_sends_no_batch(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(10))
    with BatchLoopbackServer() as srv:
        run_batch(data, srv)
        engine = run_batch(data, srv, force=True)
        assert srv.batches.counts["create"] == 1
    assert engine.reports[0].stats["cache_hits"] == 10


def test_batches_split_at_the_provider_limits(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(25))
    with BatchLoopbackServer() as srv:
        srv.batches.max_requests = 10  # the server refuses larger batches
        run_batch(data, srv, settings=BatchSettings(max_requests=10, poll_seconds=0.02))
        assert srv.batches.batch_sizes == [10, 10, 5]
    data2 = write_input(tmp_path / "data2", questions(25))
    with BatchLoopbackServer() as srv:
        line = 160  # bytes of one request line, roughly: the byte limit splits too
        srv.batches.max_bytes = 8 * line
        run_batch(data2, srv, settings=BatchSettings(max_bytes=8 * line, poll_seconds=0.02))
        assert len(srv.batches.batch_sizes) >= 4 and sum(srv.batches.batch_sizes) == 25
    rows = read_rows(tmp_path / "data2" / "2_Ask.json")
    assert [r["answer"] for r in rows] == expected_answers(25)


def test_partial_failure_is_retried_as_a_smaller_batch(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(40))
    with BatchLoopbackServer() as srv:
        srv.batches.fail_rate = 0.3
        first = run_batch(data, srv)
        failed = [
            i for i, r in enumerate(read_rows(tmp_path / "data" / "2_Ask.json")) if ERROR_KEY in r
        ]
        assert 0 < len(failed) < 40
        assert first.reports[0].errors == len(failed)
        message = read_rows(tmp_path / "data" / "2_Ask.json")[failed[0]][ERROR_KEY]["message"]
        assert "--retry-errors" in message and "batch-" in message
        srv.batches.fail_rate = 0.0
        run_batch(data, srv, retry_errors=True)
        assert srv.batches.batch_sizes == [40, len(failed)]
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert [r["answer"] for r in rows] == expected_answers(40)
    assert not any(ERROR_KEY in r for r in rows)


@pytest.mark.parametrize("ending", ["expired", "cancelled"])
def test_expired_or_cancelled_batch_is_reported_with_what_to_do(
    tmp_path: Path, ending: str, capfd: pytest.CaptureFixture[str]
) -> None:
    data = write_input(tmp_path / "data", questions(10))
    with BatchLoopbackServer() as srv:
        srv.batches.delay = 0.3
        if ending == "expired":
            srv.batches.expire = True
        registry = registry_for(srv, batch=FAST)
        engine = Pipeline([Ask("answer", "loop")], RunOptions(progress=None, registry=registry))

        async def go() -> None:
            task = asyncio.create_task(engine.run(data))
            if ending == "cancelled":
                while not srv.batches.batch_ids():
                    await asyncio.sleep(0.01)
                srv.batches.cancel(srv.batches.batch_ids()[0])
            await task
            await registry.aclose()

        asyncio.run(go())
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    answered = [r for r in rows if ERROR_KEY not in r]
    assert len(answered) == 5  # the server answers half before the batch ends
    failed = [r for r in rows if ERROR_KEY in r]
    assert all(ending in r[ERROR_KEY]["message"] for r in failed)
    assert all("--retry-errors" in r[ERROR_KEY]["message"] for r in failed)
    err = capfd.readouterr().err
    assert f"{ending} with 5 of 10 requests answered" in err and "--retry-errors" in err
    assert engine.reports[0].stats["batches"][0]["status"] == ending


SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from masksql_pipe.engine.pipeline import Pipeline
    from masksql_pipe.prompt.processor import PromptProcessor
    from masksql_pipe.engine.stage import RunOptions

    class Ask(PromptProcessor):
        def _get_prompt(self, row):
            return f"Q: {row['question']}"

    options = RunOptions(concurrency=8, progress=False, batch=True)
    asyncio.run(Pipeline([Ask("answer", "loop")], options).run(sys.argv[1]))
    """
)


def test_kill_9_while_waiting_resumes_the_same_batch(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(20))
    script = tmp_path / "run_pipeline.py"
    script.write_text(SCRIPT, encoding="utf-8")
    record = bookkeeping_dir(tmp_path / "data") / "batches" / "2_Ask.json"
    with BatchLoopbackServer() as srv:
        srv.batches.delay = 3.0
        config = tmp_path / "models.yaml"
        config.write_text(
            f"loop: {{model: m, base_url: '{srv.base_url}', "
            "batch: {poll_seconds: 0.05, max_poll_seconds: 0.2}}\n",
            encoding="utf-8",
        )
        env = {**os.environ, "MASKSQL_PIPE_MODELS": str(config), "OPENAI_API_KEY": SECRET}
        env.pop("OPENAI_BASE_URL", None)
        proc = subprocess.Popen(
            [sys.executable, str(script), str(data)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while srv.batches.counts["retrieve"] < 2:  # created, recorded, and being polled
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the batch was never polled"
            time.sleep(0.01)
        assert record.exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert srv.batches.counts["create"] == 1
        assert srv.batches.batch_ids()[0] in record.read_text()
        rerun = subprocess.run(
            [sys.executable, str(script), str(data)], env=env, capture_output=True, timeout=60
        )
        assert rerun.returncode == 0, rerun.stderr.decode()
        assert srv.batches.counts["create"] == 1  # resumed, never submitted again
        assert srv.batches.counts["upload"] == 1
        assert srv.requests == 0
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert [r["answer"] for r in rows] == expected_answers(20)
    assert SECRET not in (rerun.stderr + rerun.stdout).decode()


def test_batch_settings_are_checked(tmp_path: Path) -> None:
    assert parse_batch("m", True) == BatchSettings()
    assert parse_batch("m", None) is None
    with pytest.raises(ConfigError, match="unknown batch key 'size'"):
        parse_batch("models.yaml: model 'x'", {"size": 3})
    with pytest.raises(ConfigError, match=r"'batch\.max_requests' must be a number > 0, got 0"):
        parse_batch("models.yaml: model 'x'", {"max_requests": 0})


def test_batch_state_and_counts_reach_the_progress_line(tmp_path: Path) -> None:
    import io

    from masksql_pipe.engine.progress import show_progress
    from masksql_pipe.engine.stage import RowCounter
    from masksql_pipe.lm.openai_model import OpenAIModel

    seen: list[str] = []
    with BatchLoopbackServer() as srv:
        srv.batches.delay = 0.3
        model = OpenAIModel("m", model="m", base_url=srv.base_url, api_key=SECRET)
        stream = io.StringIO()
        counter = RowCounter(total=3)

        async def go() -> None:
            runner = BatchRunner(
                model.batch_client(),
                tmp_path / "record.json",
                FAST,
                on_status=lambda text: (seen.append(text), setattr(counter, "note", text)),
            )
            async with show_progress("2_Ask", counter, True, stream, plain_interval=0.05):
                bodies = {
                    f"k{i}": model.request_body([{"role": "user", "content": f"{i}"}])
                    for i in range(3)
                }
                outcome = await runner.run(bodies)
            assert len(outcome.answers) == 3
            await model.aclose()

        asyncio.run(go())
    assert any("in_progress" in s for s in seen) and "completed 3/3 done, 0 failed" in seen[-1]
    assert "batch-" in stream.getvalue() and "in_progress" in stream.getvalue()


def _stopped_after_upload(
    tmp_path: Path, srv: BatchLoopbackServer, create: bool
) -> tuple[Path, dict]:
    """A record as a run leaves it when killed after uploading (and maybe creating) a batch."""
    from masksql_pipe.lm.openai_model import OpenAIModel

    model = OpenAIModel("m", model="m", base_url=srv.base_url, api_key=SECRET)
    bodies = {f"k{i}": model.request_body([{"role": "user", "content": f"{i}"}]) for i in range(4)}
    record = tmp_path / "record.json"

    async def crash() -> None:
        runner = BatchRunner(model.batch_client(), record, FAST)
        entry = await runner._upload(list(runner._chunks(list(bodies), bodies)[0]))
        runner._save([entry])
        if create:  # the batch exists, its id never reached the record
            await model.batch_client().batches.create(
                input_file_id=entry["input_file_id"],
                endpoint="/v1/chat/completions",
                completion_window="24h",
            )
        await model.aclose()

    asyncio.run(crash())
    return record, bodies


@pytest.mark.parametrize("created", [False, True])
def test_a_run_stopped_between_upload_and_record_submits_nothing_twice(
    tmp_path: Path, created: bool
) -> None:
    from masksql_pipe.lm.openai_model import OpenAIModel

    with BatchLoopbackServer() as srv:
        record, bodies = _stopped_after_upload(tmp_path, srv, created)
        assert srv.batches.counts["upload"] == 1
        model = OpenAIModel("m", model="m", base_url=srv.base_url, api_key=SECRET)

        async def resume() -> int:
            runner = BatchRunner(model.batch_client(), record, FAST)
            outcome = await runner.run(bodies)
            await model.aclose()
            return len(outcome.answers)

        assert asyncio.run(resume()) == 4
        assert srv.batches.counts["upload"] == 1  # the uploaded file is used, not sent again
        assert srv.batches.counts["create"] == 1  # the batch found by its file, or made once


def test_a_batch_that_fails_validation_is_reported(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = write_input(tmp_path / "data", questions(4))
    with BatchLoopbackServer() as srv:
        srv.batches.invalid = "model 'm' does not support the batch API"
        registry = registry_for(srv, batch=FAST)
        engine = Pipeline([Ask("answer", "loop")], RunOptions(progress=None, registry=registry))

        async def go() -> None:
            await engine.run(data)
            await registry.aclose()

        asyncio.run(go())
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert all("does not support the batch API" in r[ERROR_KEY]["message"] for r in rows)
    err = capfd.readouterr().err
    assert "failed validation (model 'm' does not support the batch API)" in err
