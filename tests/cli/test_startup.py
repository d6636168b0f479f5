"""Fast commands: no HTTP client library is imported until a remote model is resolved.

Each check runs the real CLI in a fresh interpreter (a subprocess: modules already imported
by the test process would hide the point) and reports which client modules got imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT_MODULES = ("openai", "httpx", "httpx2", "aiohttp.client")

PROBE = """
import sys
from masksql_pipe.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
print("IMPORTED=" + ",".join(m for m in {modules!r} if m in sys.modules))
"""


def imported_clients(*args: str, cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    """Run the CLI with ARGS in a new interpreter; the HTTP client modules it imported."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=CLIENT_MODULES), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stdout.splitlines() if x.startswith("IMPORTED=")][-1]
    return [name for name in line.removeprefix("IMPORTED=").split(",") if name]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp copy of the simple experiment sample."""
    folder = tmp_path_factory.mktemp("startup") / "simple"
    shutil.copytree(ROOT / "data" / "samples" / "simple", folder)
    return folder


def _probe(code: str) -> str:
    """Run `code` in a fresh interpreter at the repository root; its standard output."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_and_offline_commands_import_no_http_client(sample: Path) -> None:
    cwd = sample.parent
    assert imported_clients("--help", cwd=cwd) == []
    run = ["--data", str(sample), "--pipeline", "simple", "infer.model.name=perfect"]
    assert imported_clients(*run, cwd=cwd) == []
    for command in (
        ["status", "--data", str(sample)],
        ["show", "--data", str(sample), "2", "0"],
        ["history", "--data", str(sample)],
        ["summarize", "latest", "--data", str(sample)],
        ["report", "latest", "--data", str(sample), "--out", str(cwd / "r.html")],
    ):
        assert imported_clients(*command, cwd=cwd) == [], command


def test_a_remote_model_does_import_the_client(sample: Path) -> None:
    """The probe can see the client when it is imported (so the checks above can fail): a
    remote model brings in aiohttp, the lean sender's client, and still not `openai`."""
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    imported = imported_clients("models", cwd=sample.parent, env=env)
    assert imported == []  # listing models resolves none that is remote ...
    models = sample.parent / "models.yaml"
    models.write_text("models:\n  far: {model: m, base_url: 'http://127.0.0.1:9/v1'}\n")
    try:
        assert imported_clients("models", cwd=sample.parent, env=env) == ["aiohttp.client"]
    finally:
        models.unlink()


def test_importing_changes_no_process_state() -> None:
    """No import-time side effects: importing the CLI and the stages never touches the umask."""
    probe = (
        "import os\n"
        "calls = []\n"
        "real = os.umask\n"
        "os.umask = lambda mask: calls.append(mask) or real(mask)\n"
        "import masksql_pipe, masksql_pipe.cli.app, masksql_pipe.engine.files\n"
        "import stages.pipelines.masksql\n"
        "print(calls)\n"
    )
    assert _probe(probe).strip() == "[]"


def test_help_loads_neither_the_engine_nor_the_configuration_layer() -> None:
    """`--help` stays fast as the project grows: the engine, templates, pydantic configuration
    and the model layer are imported by the commands that use them, not to print help."""
    probe = (
        "import sys\n"
        "from masksql_pipe.cli.app import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['masksql_pipe.engine.pipeline', 'masksql_pipe.prompt.processor',\n"
        "         'masksql_pipe.lm',\n"
        "         'masksql_pipe.experiment.config', 'stages', 'pydantic', 'jinja2']\n"
        "print('LOADED=' + ','.join(m for m in heavy if m in sys.modules))\n"
    )
    assert _probe(probe).strip().splitlines()[-1] == "LOADED="


def test_lazy_exports_all_resolve() -> None:
    import masksql_pipe
    import masksql_pipe.experiment

    for package in (masksql_pipe, masksql_pipe.experiment):
        for name in package.__all__:
            assert getattr(package, name) is not None, name
        assert set(package.__all__) <= set(dir(package))
