"""The README and every docs/ page run as written: each bash, Python and YAML example is executed,
page by page, in order.

Each page's examples run in a temporary folder of their own holding a copy of `data/` and
`main.py`, with `python` being this interpreter; the shipped `data/` is checked to be untouched
afterwards. A block
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

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:<!--\s*readme:\s*(?P<mark>[^>]*?)\s*-->\s*\n)?^```(?P<lang>bash|python|yaml)\n(?P<body>.*?)^```",
    re.MULTILINE | re.DOTALL,
)


@dataclass
class Example:
    page: str
    lang: str
    body: str
    line: int
    mark: str

    @property
    def id(self) -> str:
        return f"{self.page}:line{self.line}-{self.lang}"


def examples() -> list[Example]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        name = page.relative_to(ROOT).as_posix()
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("lang")) + 1
            mark = (match["mark"] or "").strip()
            found.append(Example(name, match["lang"], match["body"], line, mark))
    return found


@pytest.fixture(scope="session")
def workdirs(tmp_path_factory: pytest.TempPathFactory):
    """page -> a folder with a copy of data/ and main.py where its examples run, made on first
    use; the shipped data/ is checked afterwards. Session-scoped: an xdist worker may run other
    modules' tests between two examples, which would tear a module-scoped folder down and lose
    what the earlier examples of the page wrote (a flaky "no module 'wordcount'")."""
    before = snapshot(ROOT / "data")
    folders: dict[str, Path] = {}

    def folder_for(page: str) -> Path:
        if page not in folders:
            folder = tmp_path_factory.mktemp("docs")
            shutil.copytree(ROOT / "data", folder / "data")
            shutil.copy(ROOT / "main.py", folder / "main.py")
            folders[page] = folder
        return folders[page]

    yield folder_for
    assert snapshot(ROOT / "data") == before, "a docs example wrote into the shipped data/"


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


@pytest.mark.xdist_group("docs")  # one worker, in order: later examples use earlier runs
@pytest.mark.parametrize("example", examples(), ids=lambda e: e.id)
def test_docs_example_runs(example: Example, workdirs, tmp_path: Path) -> None:
    if example.mark.startswith("skip"):
        reason = example.mark.partition(":")[2].strip()
        pytest.skip(f"{example.page} line {example.line}: {reason}")
    workdir = workdirs(example.page)
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


def test_docs_have_examples_of_each_kind() -> None:
    kinds = {example.lang for example in examples()}
    assert kinds == {"bash", "python", "yaml"}


def test_every_docs_page_is_linked_from_the_readme_and_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README does not link {page.name}"
