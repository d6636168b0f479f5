"""kill -9 of a real process in the middle of a model stage, then a rerun: nothing is paid twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from masksql_pipe.engine.stage import ERROR_KEY
from masksql_pipe.loopback.server import LoopbackServer, prompt_id
from tests.lm_fixtures import SECRET, questions, read_rows, write_input

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from masksql_pipe.engine.pipeline import Pipeline
    from masksql_pipe.prompt.processor import PromptProcessor
    from masksql_pipe.engine.stage import RunOptions

    class Ask(PromptProcessor):
        def _get_prompt(self, row):
            return f"Q: {row['question']}"

        def _process_output(self, row, output):
            return output

    options = RunOptions(concurrency=8, progress=False, no_cache=sys.argv[2] == "no-cache")
    asyncio.run(Pipeline([Ask("answer", "loop")], options).run(sys.argv[1]))
    """
)

ROWS = 120


def _run(script: Path, data: Path, env: dict[str, str], cache: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(script), str(data), cache],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("cache", ["cache", "no-cache"])  # no-cache: the journal alone
def test_rerun_after_kill_sends_no_prompt_twice(tmp_path: Path, cache: str) -> None:
    data = write_input(tmp_path / "data", questions(ROWS))
    script = tmp_path / "run_pipeline.py"
    script.write_text(SCRIPT, encoding="utf-8")
    with LoopbackServer(latency=0.05) as srv:
        config = tmp_path / "models.yaml"
        config.write_text(f"loop: {{model: m, base_url: '{srv.base_url}'}}\n", encoding="utf-8")
        env = {**os.environ, "MASKSQL_PIPE_MODELS": str(config), "OPENAI_API_KEY": SECRET}
        env.pop("OPENAI_BASE_URL", None)

        proc = _run(script, data, env, cache)
        deadline = time.monotonic() + 30
        while sum(srv.answers_by_prompt().values()) < 40:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the pipeline made too little progress"
            time.sleep(0.01)
        answered_early = set(srv.answers_by_prompt())
        time.sleep(0.2)  # those answers have long reached the client
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert not (tmp_path / "data" / "2_Ask.json").exists()
        sent_before = srv.requests
        assert sent_before < ROWS

        rerun = _run(script, data, env, cache)
        out, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err.decode()
        by_prompt = srv.requests_by_prompt()

    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert [r["answer"] for r in rows] == [f"Q: {q['question']}" for q in questions(ROWS)]
    assert not any(ERROR_KEY in r for r in rows)
    expected = {
        prompt_id([{"role": "user", "content": f"Q: {q['question']}"}]) for q in questions(ROWS)
    }
    assert set(by_prompt) == expected
    assert all(by_prompt[p] == 1 for p in answered_early)  # answered before the kill: never again
    # only calls cut off in flight by the kill may have been sent twice
    assert sum(by_prompt.values()) - ROWS <= 8
    assert SECRET not in (err + out).decode()
