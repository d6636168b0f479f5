"""Small frictions a new user met, each fixed: exports, user pipelines from the working folder,
suggestions for mistyped commands and options, `show` by file name, key messages, keyless
local endpoints, `compare` showing the settings that differ."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest

from masksql_pipe.loopback.server import LoopbackServer
from tests.conftest import ROOT, cli, load, write_rows


def cli_here(*args: str) -> tuple[int, str, str]:
    """The CLI in this process (exit code, stdout, stderr): where a subprocess is not the point."""
    from masksql_pipe.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


LEN_PIPELINE = '''
from masksql_pipe import JsonListTransformer
from masksql_pipe.experiment import ExperimentPipeline


class AddLength(JsonListTransformer):
    async def _process_row(self, row):
        row["length"] = len(row["text"])
        return row


class LenPipeline(ExperimentPipeline):
    """Adds the length of each row's text."""

    def __init__(self, registry=None, replacement_config=None, flat_config_patch=None):
        super().__init__({}, replacement_config, flat_config_patch)

    def stages(self):
        return [AddLength()]
'''


def test_prompt_processor_and_experiment_pipeline_are_exported() -> None:
    import masksql_pipe
    from masksql_pipe import PromptProcessor
    from masksql_pipe.experiment import ExperimentPipeline, Pipeline
    from masksql_pipe.prompt.processor import PromptProcessor as Original

    assert PromptProcessor is Original and "PromptProcessor" in masksql_pipe.__all__
    assert Pipeline is ExperimentPipeline  # the old name still works
    assert ExperimentPipeline is not masksql_pipe.Pipeline  # and differs from the engine's


def test_user_pipeline_imports_from_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / "mylen.py").write_text(LEN_PIPELINE, encoding="utf-8")
    write_rows(tmp_path / "d" / "1_input.json", [{"text": "abc"}, {"text": "hello"}])
    done = cli("--data", "d", "--pipeline", "mylen:LenPipeline", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [row["length"] for row in load(tmp_path / "d" / "2_AddLength.json")] == [3, 5]


def test_user_pipeline_import_error_is_shown(tmp_path: Path) -> None:
    write_rows(tmp_path / "d" / "1_input.json", [{"text": "abc"}])
    (tmp_path / "broken.py").write_text("import no_such_package_xyz\n", encoding="utf-8")
    done = cli("--data", "d", "--pipeline", "broken:LenPipeline", cwd=tmp_path)
    assert done.returncode == 2
    assert "No module named 'no_such_package_xyz'" in done.stderr
    assert "unknown pipeline" not in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "typo.py").write_text("def f(:\n", encoding="utf-8")
    done = cli("--data", "d", "--pipeline", "typo", cwd=tmp_path)
    assert done.returncode == 2 and "SyntaxError" in done.stderr and "typo.py" in done.stderr
    done = cli("--data", "d", "--pipeline", "absent_module:X", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown pipeline 'absent_module:X'" in done.stderr and str(tmp_path) in done.stderr


def test_mistyped_command_and_option_get_suggestions(data_dir: Path) -> None:
    code, _, err = cli_here("stauts", "--data", str(data_dir))
    assert code == 2 and "unknown command 'stauts'; did you mean 'status'?" in err
    code, _, err = cli_here("--data", str(data_dir), "--pipeline", "simple", "--limt", "3")
    assert code == 2 and "--limt; did you mean --limit?" in err
    assert not (data_dir / "2_prepare.json").exists()
    code, _, err = cli_here("frobnicate")
    assert code == 2 and "commands: run, status, show" in err
    done = cli("stauts", "--data", str(data_dir))  # the same through main.py
    assert done.returncode == 2 and "did you mean 'status'?" in done.stderr


def test_show_takes_a_file_name_and_says_give_the_name(data_dir: Path) -> None:
    done = cli("--data", str(data_dir), "--pipeline", "tests.helpers_stages:CountingPipeline")
    assert done.returncode == 0, done.stderr
    first = sorted(data_dir.glob("2_*.json"))[0]
    shutil.copy(first, data_dir / "2_Other.json")
    code, _, err = cli_here("show", "--data", str(data_dir), "2", "0")
    assert code == 2 and f"matches {first.name}, 2_Other.json; give the name" in err
    code, out, err = cli_here("show", "--data", str(data_dir), "2_Other.json", "1")
    assert code == 0, err
    assert '"id": "r1"' in out


MODELS_WITH_KEY_VARIABLE = """models:
  small:
    model: tiny
    base_url: http://127.0.0.1:9/v1
    api_key_env: LOCAL_KEY_FOR_TEST
"""


def test_unset_key_variable_is_named_plainly(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "data" / "samples" / "simple", tmp_path / "d")
    (tmp_path / "models.yaml").write_text(MODELS_WITH_KEY_VARIABLE, encoding="utf-8")
    done = cli("--data", "d", "--pipeline", "simple", "infer.model.name=small", cwd=tmp_path)
    assert done.returncode == 2
    assert "$LOCAL_KEY_FOR_TEST is not set" in done.stderr
    assert "did you mean" not in done.stderr


def test_local_endpoint_without_key_variable_needs_no_key(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "data" / "samples" / "simple", tmp_path / "d")
    with LoopbackServer(reply="42", api_key="no-key") as server:
        (tmp_path / "models.yaml").write_text(
            f"models:\n  local:\n    model: tiny\n    base_url: {server.base_url}\n",
            encoding="utf-8",
        )
        done = cli(
            "--data", "d", "--pipeline", "simple", "infer.model.name=local", "--max-errors",
            "100", cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert server.requests > 0 and server.faults_sent()["401"] == 0


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    shutil.copytree(ROOT / "data" / "samples" / "simple", folder)
    for temperature in ("0", "0.5"):
        done = cli(
            "--data", str(folder), "--pipeline", "simple", "infer.model.name=perfect",
            f"infer.model.settings.temperature={temperature}",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return folder


def test_compare_prints_the_settings_that_differ(two_runs: Path) -> None:
    history = sorted(p.stem for p in (two_runs / ".masksql_pipe" / "runs").glob("*.json"))
    code, out, err = cli_here("compare", history[0], history[1], "--data", str(two_runs))
    assert code == 0, err
    assert "Settings that differ (1)" in out
    line = next(x for x in out.splitlines() if "infer.model.settings.temperature" in x)
    assert "0" in line and "0.5" in line
    code, out, _ = cli_here("compare", history[1], history[1], "--data", str(two_runs))
    assert "The configurations are the same." in out


def test_readers_of_a_missing_data_folder_say_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    for args in (("show", "--data", str(missing), "1"), ("status", "--data", str(missing))):
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"{missing}: data folder not found" in done.stderr.strip().splitlines()[-1]
