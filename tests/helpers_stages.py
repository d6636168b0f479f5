"""Stages and pipelines for the tests, importable from subprocesses (tests/ is on PYTHONPATH)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from masksql_pipe import JsonListTransformer
from masksql_pipe.engine.basic_stages import LimitJson
from masksql_pipe.errors import StageFatal
from masksql_pipe.experiment import Pipeline as Experiment


class AddNumber(JsonListTransformer):
    """Adds ``amount`` to ``x`` into ``field``."""

    def __init__(self, amount: int = 1, field: str = "y") -> None:
        self.amount = amount
        self.field = field

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row[self.field] = row["x"] + self.amount
        return row


class Logged(JsonListTransformer):
    """Appends 'start i' / 'end i' lines to a side file, sleeping between, to count calls."""

    def __init__(self, side_file: str, delay: float = 0.0, fail_when: str | None = None) -> None:
        self.side_file = side_file
        self.delay = delay
        self.fail_when = fail_when

    def _log(self, text: str) -> None:
        with open(self.side_file, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        self._log(f"start {row['x']}")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_when and os.path.exists(self.fail_when) and row["x"] % 3 == 0:
            raise RuntimeError(f"row {row['x']} refused")
        row["logged"] = row["x"] * 10
        self._log(f"end {row['x']}")
        return row


class Crunch(JsonListTransformer):
    """A process-parallel stage for the worker tests: ``sq`` is x squared; with ``pid`` the
    process that computed the row is in ``pid``; a row whose x is a multiple of ``fail_every``
    raises; with ``side_file``, 'start x' / 'end x' lines (and 'pid p'); rows whose x is a
    multiple of 7 take ``delay`` seconds longer, so chunks finish out of order; row ``hang_on``
    blocks its process for a minute, row ``fatal_on`` stops the stage (StageFatal)."""

    processes = True

    def __init__(
        self,
        fail_every: int = 0,
        pid: bool = False,
        side_file: str | None = None,
        delay: float = 0.0,
        hang_on: int | None = None,
        fatal_on: int | None = None,
    ) -> None:
        self.fail_every = fail_every
        self.pid = pid
        self.side_file = side_file
        self.delay = delay
        self.hang_on = hang_on
        self.fatal_on = fatal_on

    def _log(self, text: str) -> None:
        if self.side_file:
            with open(self.side_file, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        self._log(f"start {row['x']}")
        self._log(f"pid {os.getpid()}")
        if row["x"] == self.hang_on:
            time.sleep(60)
        if row["x"] == self.fatal_on:
            raise StageFatal(f"row {row['x']}: every row would fail")
        if self.delay:
            await asyncio.sleep(self.delay * (3 if row["x"] % 7 == 0 else 1))
        if self.fail_every and row["x"] % self.fail_every == 0:
            raise ValueError(f"row {row['x']} refused")
        row["sq"] = row["x"] * row["x"]
        if self.pid:
            row["pid"] = os.getpid()
        self._log(f"end {row['x']}")
        return row


class CrunchFiles(Crunch):
    """Crunch declaring the files it reads: the engine then hands it the whole list (the path
    the SQL stages take) instead of streaming rows."""

    def external_files(self, rows: list[dict[str, Any]]) -> list[Path]:
        return []


class CrunchPipeline(Experiment):
    """A one-stage pipeline for CLI tests of --workers: Crunch with the process in ``pid``."""

    _name = "crunch"
    _description = "Squares x in worker processes, recording each row's process."

    def __init__(self, registry, replacement_config=None, flat_config_patch=None):
        self._registry = registry
        super().__init__({}, replacement_config, flat_config_patch)

    def stages(self):
        return {"Crunch": Crunch(pid=True)}

    def case_passed(self, row):
        return row.get("sq") == row["x"] * row["x"]


def side_counts(side_file: Path) -> dict[str, list[int]]:
    """Indices started and ended, in order, from a Logged side file."""
    result: dict[str, list[int]] = {"start": [], "end": []}
    if side_file.exists():
        for line in side_file.read_text().splitlines():
            kind, _, value = line.partition(" ")
            if kind in result and value.isdigit():
                result[kind].append(int(value))
    return result


class CountingPipeline(Experiment):
    """A small configurable pipeline for CLI tests: limit, add a number, log calls."""

    _name = "counting"
    _description = "Adds a number to x and logs each call to a side file."

    def __init__(self, registry, replacement_config=None, flat_config_patch=None):
        self._registry = registry
        default_config = {"add": {"amount": 1}, "log": {"side_file": "", "delay": 0.0}}
        super().__init__(default_config, replacement_config, flat_config_patch)

    def stages(self):
        conf = self.config()
        side = conf["log"]["side_file"] or str(Path(self.data_dir) / "side.log")
        options = self.options
        return {
            "LimitJson": LimitJson(options.start, options.limit),
            "AddNumber": AddNumber(conf["add"]["amount"]),
            "Logged": Logged(side, conf["log"]["delay"]),
        }

    def case_passed(self, row):
        return row.get("y") == row["x"] + 1
