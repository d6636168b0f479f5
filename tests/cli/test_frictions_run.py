"""Frictions of running a pipeline, each through the CLI: a set-up error in ``stages()`` is
one line naming the pipeline; a YAML models file error has its line and column; an empty
input warns; hints name the command as typed; `status` during the first run of a pipeline
judges by that pipeline; a pipeline that judges no case shows passed as n/a."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_runner import ROOT, cli_environment
from tests.conftest import cli, write_rows

WIDE = {"COLUMNS": "200"}

BROKEN = """
from masksql_pipe.experiment import Pipeline


class Broken(Pipeline):
    _name = "broken"

    def __init__(self, registry, replacement_config, flat_config_patch):
        super().__init__({"limit": 3}, replacement_config, flat_config_patch)

    def stages(self):
        table = {"a": 1}
        wanted = table["missing_entry"]  # a bug in the set-up code

        async def one(context):
            return wanted

        return {"one": one}
"""

GATED = '''
import asyncio
from pathlib import Path

from masksql_pipe.experiment import Pipeline


class Gated(Pipeline):
    """Waits in its stage until the file named by `gate` exists."""

    _name = "gated"

    def __init__(self, registry, replacement_config, flat_config_patch):
        super().__init__({"gate": ""}, replacement_config, flat_config_patch)

    def stages(self):
        gate = Path(self.config()["gate"])

        async def wait(context):
            while not gate.exists():
                await asyncio.sleep(0.05)
            return 1

        return {"wait": wait}
'''


def module(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"id": "a"}])
    return data


def test_a_setup_error_in_stages_is_one_line_naming_the_pipeline(tmp_path: Path) -> None:
    data = module(tmp_path, "broken", BROKEN)
    proc = cli("--data", str(data), "--pipeline", "broken:Broken", cwd=tmp_path, env=WIDE)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith("error: pipeline 'broken:Broken': setting up its stages failed")
    assert "broken.py, line 13" in line and "KeyError: 'missing_entry'" in line


def test_a_yaml_models_file_error_gives_line_and_column(tmp_path: Path) -> None:
    data = module(tmp_path, "broken", BROKEN)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  loop:\n    model: m\n   base_url: x\n", encoding="utf-8")
    proc = cli("--data", str(data), "--models", str(models), cwd=tmp_path, env=WIDE)
    assert proc.returncode == 2, proc.stderr
    assert f"{models}: line 4, column 4: not valid YAML" in proc.stderr, proc.stderr


def test_an_empty_input_warns(tmp_path: Path) -> None:
    data = module(tmp_path, "gated", GATED)
    (data / "1_input.json").write_text("[]\n", encoding="utf-8")
    run = ("--data", str(data), "--pipeline", "gated:Gated", "gate=/")
    proc = cli(*run, cwd=tmp_path, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert "input is empty" in proc.stderr
    write_rows(data / "1_input.json", [{"id": "b"}])
    proc = cli(*run, cwd=tmp_path, env=WIDE)
    assert "input is empty" not in proc.stderr


def test_hints_name_the_command_as_typed(tmp_path: Path) -> None:
    data = module(tmp_path, "gated", GATED)
    run = ("--data", str(data), "--pipeline", "gated:Gated", "gate=/")
    proc = cli(*run, cwd=tmp_path, env=WIDE)
    assert f"`python main.py summarize latest --data {data}`" in proc.stderr, proc.stderr
    script = tmp_path / "bin" / "masksql-pipe"  # as the installed console script runs
    script.parent.mkdir()
    script.write_text("import sys\nfrom masksql_pipe.cli.app import main\nmain()\n")
    proc = subprocess.run(
        [sys.executable, str(script), *run, "--force"],
        cwd=tmp_path,
        env=cli_environment(WIDE),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"`masksql-pipe summarize latest --data {data}`" in proc.stderr, proc.stderr
    assert "python main.py" not in proc.stderr


def test_status_during_the_first_run_reports_its_pipeline(tmp_path: Path) -> None:
    data = module(tmp_path, "gated", GATED)
    gate = tmp_path / "open"
    args = ["--data", str(data), "--pipeline", "gated:Gated", f"gate={gate}"]
    running = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=tmp_path,
        env=cli_environment(WIDE),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (data / ".masksql_pipe" / "journal").exists():  # the stage has started
            assert running.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        status = cli("status", "--data", str(data), cwd=tmp_path, env=WIDE)
    finally:
        gate.touch()
        _, stderr = running.communicate(timeout=60)
    assert running.returncode == 0, stderr
    assert status.returncode == 0, status.stderr
    assert "gated:Gated on" in status.stdout, status.stdout
    assert "judged against the settings of the run in progress" in status.stderr
    assert not (data / ".masksql_pipe" / "running.json").exists()  # the run is over
    assert os.path.isdir(data / ".masksql_pipe" / "runs")


def test_status_after_a_killed_run_calls_it_interrupted_not_in_progress(tmp_path: Path) -> None:
    data = module(tmp_path, "gated", GATED)
    args = ["--data", str(data), "--pipeline", "gated:Gated", f"gate={tmp_path / 'never'}"]
    running = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=tmp_path,
        env=cli_environment(WIDE),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (data / ".masksql_pipe" / "journal").exists():  # the stage has started
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=30)
    assert (data / ".masksql_pipe" / "running.json").exists()  # a killed run cannot clear it
    status = cli("status", "--data", str(data), cwd=tmp_path, env=WIDE)
    assert status.returncode == 0, status.stderr
    assert "judged against the settings of the interrupted run" in status.stderr
    assert "gated:Gated on" in status.stdout, status.stdout


def test_without_verdicts_passed_is_n_a(tmp_path: Path) -> None:
    data = module(tmp_path, "gated", GATED)
    proc = cli("--data", str(data), "--pipeline", "gated:Gated", "gate=/", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = cli("summarize", "latest", "--data", str(data), env=WIDE)
    assert summary.returncode == 0, summary.stderr
    lines = {
        line.split("│")[1].strip(): line
        for line in summary.stdout.splitlines()
        if line.count("│") >= 3
    }
    assert "n/a" in lines["passed"] and "0.0%" not in lines["passed"], summary.stdout
    assert "n/a" in lines["passed / complete"], summary.stdout
    shown = cli("format", "latest", "--data", str(data), env=WIDE)
    assert "accuracy n/a" in shown.stdout and "0.0%" not in shown.stdout, shown.stdout
