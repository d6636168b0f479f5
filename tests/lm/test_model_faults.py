"""Model stages through the real CLI and a loopback server: the samples use the response cache,
a damaged cache stops the stage without touching good outputs, and a key echoed back by the
server never reaches a stage file, a log or a run log."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from masksql_pipe.loopback.server import LoopbackServer
from tests.conftest import ROOT, cli, load

SECRET = "sk-SECRET-9f8e7d6c5b4a3210fedcba"


def _models_file(tmp_path: Path, server: LoopbackServer) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  loop:\n"
        "    model: loop-model\n"
        f"    base_url: {server.base_url}\n"
        "    api_key_env: LOOP_KEY\n"
        "    timeout: 5\n"
        "    max_retries: 1\n"
    )
    return path


def _simple(tmp_path: Path) -> Path:
    data = tmp_path / "simple"
    data.mkdir()
    shutil.copy(ROOT / "data" / "samples" / "simple" / "1_input.json", data / "1_input.json")
    return data


def _run(data: Path, models: Path, *extra: str, key: str = "right-key-0123456789abcdef"):
    args = ("--data", str(data), "--pipeline", "simple", "infer.model.name=loop")
    return cli(*args, "--models", str(models), *extra, env={"LOOP_KEY": key})


def test_simple_sample_pays_for_each_prompt_once(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    cases = len(load(data / "1_input.json"))
    with LoopbackServer(api_key="right-key-0123456789abcdef") as server:
        models = _models_file(tmp_path, server)
        assert _run(data, models).returncode in (0, 1)
        assert server.requests == cases
        assert _run(data, models, "--force").returncode in (0, 1)
        assert _run(data, models, "--from", "2").returncode in (0, 1)
        assert server.requests == cases  # every rerun answered from the cache
        assert _run(data, models, "--force", "--no-cache").returncode in (0, 1)
        assert server.requests == 2 * cases


def test_damaged_cache_stops_the_stage_and_keeps_good_outputs(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    with LoopbackServer(api_key="right-key-0123456789abcdef") as server:
        models = _models_file(tmp_path, server)
        assert _run(data, models).returncode in (0, 1)
        answers = data / "3_infer.json"
        good = answers.read_bytes()
        cache = data / ".masksql_pipe" / "cache.sqlite"
        with sqlite3.connect(cache) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = bytearray(cache.read_bytes())
        raw[4096:] = b"\xa5" * (len(raw) - 4096)  # every page after the header page
        cache.write_bytes(bytes(raw))
        result = _run(data, models, "--force")
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(cache) in errors[0] and "rm " in errors[0]
        assert answers.read_bytes() == good  # no good row became an error row


def test_refused_key_stops_the_stage_and_its_echo_is_written_nowhere(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    with LoopbackServer(api_key="the-right-key-0123456789") as server:
        models = _models_file(tmp_path, server)
        result = _run(data, models, "--concurrency", "2", key=SECRET)
        assert result.returncode == 2, result.stderr
        assert "HTTP 401" in result.stderr
        assert server.requests <= 4  # a refused key stops the stage, not one call per row
    assert SECRET[:6] not in result.stderr + result.stdout
    for file in data.rglob("*"):
        if file.is_file():
            assert SECRET[:6] not in file.read_bytes().decode("utf-8", "replace"), file


LEAKY = """
import os
from masksql_pipe import JsonListTransformer
from masksql_pipe.experiment import Pipeline


class Leak(JsonListTransformer):
    async def _process_row(self, row):
        if row["x"] == 1:  # as a client library would word a refused key
            raise RuntimeError(f"Incorrect API key provided: {os.environ['LOOP_KEY'][:8]}****")
        row["ok"] = True
        return row


class LeakyPipeline(Pipeline):
    _name = "leaky"

    def __init__(self, registry, replacement_config=None, flat_config_patch=None):
        super().__init__({"auth": {"api_key": ""}}, replacement_config, flat_config_patch)

    def stages(self):
        return {"Leak": Leak()}
"""


def test_secrets_in_argv_config_and_errors_never_reach_the_run_log(tmp_path: Path) -> None:
    import os

    code = tmp_path / "code"
    code.mkdir()
    (code / "leaky.py").write_text(LEAKY)
    data = tmp_path / "data"
    data.mkdir()
    (data / "1_input.json").write_text('[{"x": 0}, {"x": 1}, {"x": 2}]')
    path = os.pathsep.join([str(ROOT / "tests"), str(ROOT), str(code)])
    result = cli(
        "--data",
        str(data),
        "--pipeline",
        "leaky:LeakyPipeline",
        f"auth.api_key={SECRET}",
        "--max-errors",
        "1",
        env={"LOOP_KEY": SECRET, "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr
    rows = load(data / "2_Leak.json")
    assert rows[1]["pipe_error"]["message"].startswith("Incorrect API key provided: ")
    (log,) = (data / ".masksql_pipe" / "runs").glob("*.json")
    text = log.read_text()
    assert "auth.api_key=" in text and "Incorrect API key provided" in text  # logged, redacted
    for file in data.rglob("*"):
        if file.is_file():
            assert SECRET[:6] not in file.read_bytes().decode("utf-8", "replace"), file


def test_status_judges_endpoints_by_the_record_not_the_shell(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  loop:\n    model: loop-model\n    api_key_env: LOOP_KEY\n")
    with LoopbackServer() as server:
        env = {"LOOP_KEY": "k" * 20, "OPENAI_BASE_URL": server.base_url}
        args = ("--data", str(data), "--pipeline", "simple", "infer.model.name=loop")
        assert cli(*args, "--models", str(models), env=env).returncode in (0, 1)
    # a shell without OPENAI_BASE_URL (and without the key)
    result = cli("status", "--data", str(data))
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "3_infer.json" in line)
    assert "up to date" in line and "stage code or parameters" not in result.stdout
    assert "recorded endpoint" in result.stdout
    assert "will rerun" not in result.stdout and "stale" not in result.stdout


async def test_forbidden_model_stops_the_stage(tmp_path: Path) -> None:
    from masksql_pipe import Pipeline, RunOptions
    from masksql_pipe.errors import ModelError
    from tests.lm_fixtures import Ask, questions, registry_for, write_input

    path = write_input(tmp_path, questions(40))
    with LoopbackServer(fault_rate=1.0, fault_kinds=("403",)) as server:
        registry = registry_for(server, max_retries=3)
        pipeline = Pipeline(
            [Ask("answer", "loop")], RunOptions(progress=False, registry=registry, concurrency=4)
        )
        try:
            await pipeline.run(path)
            stopped = False
        except ModelError as exc:
            stopped = "HTTP 403" in str(exc)
        await registry.aclose()
        assert stopped and server.requests <= 4  # the calls in flight, not 40 rows x retries
    assert not (tmp_path / "2_Ask.json").exists()
