"""The run viewer in a real headless browser: the page loads, filters rows, draws a row's journey.

Builds a run folder in a temp copy of the MaskSQL sample (an oracle run, then one whose large
model is `flakey`), starts `python main.py view --port 0`, lets headless Chromium run the
page's JavaScript (`--dump-dom`), checks what it drew against the files, and saves a
screenshot. Skips, saying so, when no Chromium is installed (Debian: apt-get install chromium).

    python benchmarks/check_viewer_browser.py [--screenshot viewer.png]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class Drawn(HTMLParser):
    """What the page drew: step cards (and the picked one), row list items, model call boxes."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[str] = []
        self.picked: list[str] = []
        self.rows: list[str] = []
        self.calls = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "div" and "step" in classes:
            self.steps.append(str(found.get("data-file")))
            if "picked" in classes:
                self.picked.append(str(found.get("data-file")))
        if tag == "li" and "data-index" in found:
            self.rows.append(str(found["data-index"]))
        if tag == "details" and "call" in classes:
            self.calls += 1


def browser(url: str, *args: str) -> str:
    """Run headless Chromium on ``url`` with ``args``; its stdout."""
    command = next(found for name in BROWSERS if (found := shutil.which(name)))
    done = subprocess.run(
        [
            command,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=8000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, default=Path("viewer.png"))
    args = parser.parse_args()
    if not any(shutil.which(name) for name in BROWSERS):
        print(
            f"SKIP: no headless browser found ({', '.join(BROWSERS)}); "
            "on Debian: apt-get install chromium"
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="viewer_check_") as temp:
        data = Path(temp) / "data"
        data.mkdir()
        for name in ("1_input.json", "tables.json"):
            shutil.copy(ROOT / "data" / name, data / name)
        shutil.copytree(ROOT / "data" / "databases", data / "databases")
        main_py = [sys.executable, str(ROOT / "main.py")]
        subprocess.run(
            [*main_py, "--data", str(data), "--limit", "8"], check=True, capture_output=True
        )
        subprocess.run(
            [
                *main_py,
                "--data",
                str(data),
                "--limit",
                "8",
                "models.llm=flakey",
                "--max-errors",
                "100",
            ],
            check=True,
            capture_output=True,
        )
        runs = sorted(
            (orjson.loads(p.read_bytes()) for p in (data / ".masksql_pipe/runs").glob("*.json")),
            key=lambda r: r["created"],
        )
        files = sorted(
            (p for p in data.glob("*.json") if re.match(r"^\d+_", p.name)),
            key=lambda p: int(p.name.split("_")[0]),
        )
        last_rows = orjson.loads(files[-1].read_bytes())
        failed = [i for i, row in enumerate(last_rows) if "pipe_error" in row]
        viewer = subprocess.Popen(
            [*main_py, "view", "--data", str(data), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert viewer.stdout is not None
            url = viewer.stdout.readline().split()[2]
            problems = []

            pick = files[7].name
            page = f"{url}#file={pick}&row={failed[0]}&failed=1"
            drawn = Drawn()
            drawn.feed(browser(page, "--dump-dom"))
            if drawn.steps != [p.name for p in files]:
                problems.append(f"step cards {drawn.steps} != stage files")
            if drawn.picked != [pick]:
                problems.append(f"picked card {drawn.picked} != {pick}")
            wanted = [
                str(i)
                for i, row in enumerate(orjson.loads(files[7].read_bytes()))
                if "pipe_error" in row
            ]
            if drawn.rows != wanted:
                problems.append(f"failed-row list {drawn.rows} != {wanted}")
            if drawn.calls == 0:
                problems.append("no model calls drawn for the row")

            page = f"{url}#file={files[-1].name}&run_a={runs[0]['id']}&run_b={runs[1]['id']}"
            drawn = Drawn()
            drawn.feed(browser(page, "--dump-dom"))
            before = {c["id"]: (c["status"], c["passed"]) for c in runs[0]["cases"]}
            differing = [
                str(c["index"])
                for c in runs[1]["cases"]
                if before.get(c["id"]) != (c["status"], c["passed"])
            ]
            if drawn.rows != differing:
                problems.append(f"changed-outcome list {drawn.rows} != {differing}")

            browser(
                f"{url}#file={pick}&row={failed[0]}",
                "--window-size=1400,1000",
                f"--screenshot={args.screenshot.resolve()}",
            )
        finally:
            viewer.terminate()
            viewer.wait(timeout=10)
    for problem in problems:
        print("FAIL:", problem)
    if not problems:
        print(
            f"OK: {len(files)} step cards, filters and model calls drawn; "
            f"screenshot {args.screenshot}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
