"""The README runs as written: every bash, Python and YAML example in it is executed, in order.

The examples run in a temporary folder holding a copy of `data/` and `main.py`, with `python`
being this interpreter; the shipped `data/` is checked to be untouched afterwards. A block
preceded by `<!-- readme: skip: REASON -->` is skipped with that reason (shown by pytest -ra);
`<!-- readme: file NAME -->` writes a Python block to NAME for the examples after it.
Placeholders: `DIR` is the copied `data` folder; `RUN_A` / `RUN_B` are the two latest runs
of the folder a command names with `--data`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers_files import snapshot

README = ROOT / "README.md"
FENCE = re.compile(
    r"(?:<!--\s*readme:\s*(?P<mark>[^>]*?)\s*-->\s*\n)?^```(?P<lang>bash|python|yaml)\n(?P<body>.*?)^```",
    re.MULTILINE | re.DOTALL,
)


@dataclass
class Example:
    lang: str
    body: str
    line: int
    mark: str

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.lang}"


def examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("lang")) + 1
        found.append(Example(match["lang"], match["body"], line, (match["mark"] or "").strip()))
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory):
    """A folder with a copy of data/ and main.py, where the examples run; data/ checked after."""
    before = snapshot(ROOT / "data")
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "data", folder / "data")
    shutil.copy(ROOT / "main.py", folder / "main.py")
    yield folder
    assert snapshot(ROOT / "data") == before, "a README example wrote into the shipped data/"


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MASKSQL_PIPE"))}
    env.pop("SLM_MODEL", None)
    env.pop("LLM_MODEL", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def commands(body: str) -> list[str]:
    """The shell commands of a block: one per line, continuation lines joined, comments off."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def latest_runs(workdir: Path, command: str) -> list[str]:
    data = re.search(r"--data\s+(\S+)", command)
    folder = workdir / (data.group(1) if data else "data") / ".masksql_pipe" / "runs"
    runs = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [p.stem for p in runs]


def substitute(command: str, workdir: Path) -> str:
    command = re.sub(r"\bDIR\b", "data", command)
    if "RUN_A" in command or "RUN_B" in command:
        runs = latest_runs(workdir, command)
        assert len(runs) >= 2, f"{command}: needs two recorded runs, found {runs}"
        command = command.replace("RUN_A", runs[-2]).replace("RUN_B", runs[-1])
    return command


def run_shell(command: str, workdir: Path) -> None:
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=workdir,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"$ {command}\nexit {done.returncode}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.id)
def test_readme_example_runs(example: Example, workdir: Path, tmp_path: Path) -> None:
    if example.mark.startswith("skip"):
        pytest.skip(f"README line {example.line}: {example.mark.partition(':')[2].strip()}")
    if example.lang == "yaml":
        from masksql_pipe.lm.registry import load_config

        path = tmp_path / "models.yaml"  # parsed apart: the examples' folder stays without it
        path.write_text(example.body, encoding="utf-8")
        assert load_config(path), "the YAML example configures no model"
        return
    if example.lang == "python":
        if example.mark.startswith("file"):
            (workdir / example.mark.split()[1]).write_text(example.body, encoding="utf-8")
            return
        script = workdir / f"readme_line{example.line}.py"
        script.write_text(example.body, encoding="utf-8")
        run_shell(f"python {script.name}", workdir)
        return
    for command in commands(example.body):
        run_shell(substitute(command, workdir), workdir)


def test_readme_has_examples_of_each_kind() -> None:
    kinds = {example.lang for example in examples()}
    assert kinds == {"bash", "python", "yaml"}
