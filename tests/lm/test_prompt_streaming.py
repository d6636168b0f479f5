"""Model stages stream their rows like any per-row stage: an input larger than the process's
memory limit goes through a real model stage; a budget or a batch API still reads it whole."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from masksql_pipe.engine.pipeline import streams
from masksql_pipe.engine.stage import RunOptions
from masksql_pipe.lm.model_entries import BatchSettings
from masksql_pipe.lm.pricing import Budget
from tests.conftest import ROOT
from tests.lm_fixtures import SECRET, Ask, registry_for, server_fixture  # noqa: F401
from tests.loopback_batch import BatchLoopbackServer

SCRIPT = textwrap.dedent(
    """
    import asyncio, resource, sys
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from masksql_pipe.engine.pipeline import Pipeline
    from masksql_pipe.prompt.processor import PromptProcessor
    from masksql_pipe.engine.stage import RunOptions

    class Ask(PromptProcessor):
        def _get_prompt(self, row):
            return f"Q: {row['n']}"

        def _process_output(self, row, output):
            return output

    asyncio.run(Pipeline([Ask("answer", "loop")], RunOptions(progress=False)).run(sys.argv[1]))
    """
)


def test_a_model_stage_streams_an_input_larger_than_its_memory_limit(tmp_path: Path) -> None:
    limit = 380 << 20
    source = tmp_path / "data" / "1_input.json"
    source.parent.mkdir(parents=True)
    text = "ß" * 30_000  # 60 KB a row; the prompt itself is short
    with source.open("wb") as handle:
        handle.write(b"[\n")
        for n in range(8000):
            handle.write((b",\n" if n else b"") + orjson.dumps({"n": n, "text": text}))
        handle.write(b"\n]\n")
    assert source.stat().st_size > limit + (64 << 20)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    with BatchLoopbackServer() as srv:
        config = tmp_path / "models.yaml"
        config.write_text(f"loop: {{model: m, base_url: '{srv.base_url}'}}\n", encoding="utf-8")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MALLOC_ARENA_MAX": "2",
            "MASKSQL_PIPE_MODELS": str(config),
            "OPENAI_API_KEY": SECRET,
        }
        result = subprocess.run(
            [sys.executable, str(script), str(source), str(limit)],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    answered = 0
    with (tmp_path / "data" / "2_Ask.json").open("rb") as handle:
        for line in handle:  # rows are written one field a line: read back without parsing
            if line.startswith(b'    "answer": '):
                answered += 1
    assert answered == 8000


def test_a_budget_or_a_batch_api_reads_the_prompts_first(server) -> None:
    registry = registry_for(server)
    stage = Ask("answer", "loop")
    stage.use_options(RunOptions(registry=registry))
    assert streams(stage)
    stage.use_options(RunOptions(registry=registry, budget=Budget(1.0)))
    assert not streams(stage)  # the prompts still to send are priced before the first call
    stage.use_options(RunOptions(registry=registry, batch=True))
    assert not streams(stage)
    batched = registry_for(server, batch=BatchSettings())  # the models file's `batch: true`
    stage.use_options(RunOptions(registry=batched))
    assert not streams(stage)
    offline = Ask("answer", "echo")  # an offline model costs nothing and is never batched
    offline.use_options(RunOptions(registry=registry, budget=Budget(1.0), batch=True))
    assert streams(offline)
