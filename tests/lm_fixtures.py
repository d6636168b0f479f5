"""Shared pieces for the language-model tests: a loopback server, data folders, registries, stages.

Import what you need (`from tests.lm_fixtures import ...`); importing `server_fixture` into a test
module provides the `server` fixture there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from masksql_pipe.lm.model_entries import ModelEntry
from masksql_pipe.lm.registry import ModelRegistry
from masksql_pipe.loopback.server import LoopbackServer
from masksql_pipe.prompt.processor import PromptProcessor

SECRET = "sk-test-DO-NOT-LEAK-7f3a9c2e5b1d"
"""A fake API key; tests assert it never shows up in files, logs or errors."""


@pytest.fixture(name="server")
def server_fixture() -> Iterator[LoopbackServer]:
    """A loopback OpenAI-compatible server with a little latency."""
    with LoopbackServer(latency=0.01) as srv:
        yield srv


def write_input(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """Write DIR/1_input.json and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "1_input.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def questions(n: int) -> list[dict[str, Any]]:
    """n distinct rows with a question and a gold answer."""
    return [{"question": f"what is {i} plus {i}?", "gold": str(2 * i)} for i in range(n)]


def registry_for(
    srv: LoopbackServer, name: str = "loop", *, key: str = SECRET, **spec: Any
) -> ModelRegistry:
    """A registry with one model `name` on the loopback server, its key in $OPENAI_API_KEY
    (named outright: an entry with its own base_url and no 'api_key_env' sends no key)."""
    spec.setdefault("timeout", 2.0)
    spec.setdefault("model", "loop-model")
    spec.setdefault("base_url", srv.base_url)
    spec.setdefault("api_key_env", "OPENAI_API_KEY")
    return ModelRegistry({name: ModelEntry(**spec)}, {"OPENAI_API_KEY": key})


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a numbered file."""
    return json.loads(path.read_text(encoding="utf-8"))


class Ask(PromptProcessor):
    """Asks the question; stores the reply; the oracle answer is the gold value."""

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return f"Q: {row['question']}"

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        return output.strip()

    def _oracle(self, row: dict[str, Any]) -> str:
        return row["gold"]


class Shout(PromptProcessor):
    """A second model stage: a chat prompt with a system message; stores the reply upper-cased."""

    def _get_prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": "Repeat loudly."},
            {"role": "user", "content": f"say {row['question']}"},
        ]

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        return output.upper()


class NoOracle(PromptProcessor):
    """A stage with no oracle hook."""

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return row["question"]
