"""AuditLeaks: the deterministic leak audit of every row, from the llm-role prompt logs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from masksql_pipe.engine.records import load_record
from masksql_pipe.engine.stage import (
    ERROR_KEY,
    INCOMPLETE_STAT,
    StageRun,
    WholeListTransformer,
)
from masksql_pipe.prompt.log import (
    PROMPT_LOG_STAT,
    PROMPTS_FOLDER,
    latest_by_row,
    read_prompt_log,
    sent_text,
    tallied_rows,
)
from stages.base import LocalStage
from stages.privacy.audit import AuditRules, audit_text, mark_allowed, summarize_leaks
from stages.privacy.stage import INDEX_FOLDER, KEPT_VALUES_KEY
from stages.privacy.value_index import ValueIndex

_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def template_words(paths: Iterable[str | Path]) -> list[str]:
    """The words of prompt templates outside their jinja tags: public text, never a leak."""
    words: set[str] = set()
    for path in paths:
        text = _TEMPLATE_TAG.sub(" ", Path(path).read_text(encoding="utf-8"))
        words.update(w.lower() for w in re.findall(r"\w+", text))
    return sorted(words)


class AuditLeaks(LocalStage, WholeListTransformer):
    """Adds `leaks` ([{kind, text, stage}]) and `leak_audit` ({prompts}) to every row.

    For each stage in `llm_stages`, the row's latest logged call (as actually sent) is scanned
    by `stages.privacy.audit.audit_text` for the database's names and values, the question's
    numbers and the gold SQL's literals. Rows that failed are audited too: a row can fail
    after its prompt went out. `ignore_words` are the llm templates' own words.
    """

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        llm_stages: list[str] | None = None,
        ignore_words: list[str] | None = None,
    ) -> None:
        super().__init__(tables, databases)
        self.llm_stages = list(llm_stages or [])
        self.ignore_words = sorted({str(w).lower() for w in ignore_words or []})
        self._logs: dict[str, dict[int, dict[str, Any]]] = {}
        self._expected: dict[str, set[int]] = {}
        self._unattributed: dict[str, int] = {}
        self._read: list[Path] = []
        self._index_dir: Path | None = None

    async def setup(self, run: StageRun) -> None:
        """Read the llm stages' prompt logs (the latest call per row) and, from each stage's
        record, the calls it logged: what the audit must find."""
        await super().setup(run)
        book = Path(run.book_dir)
        self._index_dir = book / INDEX_FOLDER
        own = re.match(r"(\d+)_", run.stage_key)
        before = int(own.group(1)) if own else None
        self._logs, self._expected, self._unattributed, self._read = {}, {}, {}, []
        for name in self.llm_stages:
            key = latest_stage_key(book, name, before)
            if key is None:
                continue  # not a stage of this chain
            path = book / PROMPTS_FOLDER / f"{key}.jsonl"
            entries = read_prompt_log(path) if path.is_file() else []
            if path.is_file():
                self._read.append(path)
            self._logs[name] = latest_by_row(entries)
            record, _, _ = load_record(book, key, book.parent / f"{key}.json")
            tally = tallied_rows(((record or {}).get("stats") or {}).get(PROMPT_LOG_STAT))
            if tally is None:
                continue  # a record from before tallies, or a stage that logs no calls
            count, rows = tally
            self._expected[name] = rows
            absent = len(rows - self._logs[name].keys())
            self._unattributed[name] = max(0, count - len(entries) - absent)

    def external_files(self, rows: list[dict[str, Any]]) -> list[Path]:
        """The prompt logs read: a log that changes or vanishes makes the audit stale."""
        return list(self._read)

    def audit(self, row: dict[str, Any], index: int) -> dict[str, Any]:
        """Set `leaks` and `leak_audit` on `row` from the prompts sent for row `index`."""
        schema = self.full_schema(row)
        values = None
        if self._index_dir is not None:
            values = ValueIndex.for_database(self.database(row), self._index_dir)
        rules = AuditRules(ignore_words=frozenset(self.ignore_words))
        leaks: list[dict[str, Any]] = []
        prompts = missing = 0
        unverified: list[str] = []
        for stage, entries in self._logs.items():
            if self._unattributed.get(stage) and index in self._expected[stage]:
                unverified.append(stage)  # some call of this stage is gone: maybe this row's
            entry = entries.get(index)
            if entry is None:
                missing += index in self._expected.get(stage, ())
                continue
            prompts += 1
            text = sent_text(entry)
            for leak in audit_text(
                text, schema, values, str(row.get("question", "")), str(row.get("query", "")), rules
            ):
                leaks.append({**leak, "stage": stage})
        row["leaks"] = mark_allowed(leaks, row.get(KEPT_VALUES_KEY) or ())
        row["leak_audit"] = {"prompts": prompts}
        if missing or unverified:
            row["leak_audit"].update(missing=missing, unverified=unverified)
        return row

    async def process_list(
        self, rows: list[dict[str, Any]], indices: list[int]
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Audit every row, failed ones included (their prompts may have gone out); the run's
        audit figures go to the stage's stats, for summaries and reports."""
        audited: list[dict[str, Any]] = []
        for index in indices:
            row = rows[index]
            try:
                row = self.audit(row, index)
            except Exception as exc:  # a missing database: the row says so
                if ERROR_KEY not in row:  # a failed row keeps the error it already has
                    row = self.failed_row(row, exc)
            audited.append(row)
            yield index, row
        figures = summarize_leaks(audited)
        self.stats["leak_audit"] = figures
        kinds = ", ".join(f"{k} {v}" for k, v in figures["by_kind"].items())
        share = figures["leak_rate"]
        shown = "unknown" if figures.get("incomplete") else f"{figures['rows_with_leaks']}"
        self.stats["figures"] = {
            "rows with a leak in an llm prompt (audit)": (
                f"{shown}/{figures['audited_rows']}"
                + (f" ({100 * share:.2f}%)" if share is not None else "")
                + f"; {kinds}"
            )
        }
        if figures.get("incomplete"):
            self.stats[INCOMPLETE_STAT] = (
                f"{figures['incomplete']} ({', '.join(self._short_logs())}); the leak figure is "
                "unknown: rerun the llm stages (--from) to log their calls again"
            )

    def _short_logs(self) -> list[str]:
        """Each llm stage whose log came up short, with what was found of what it logged."""
        short = []
        for stage, rows in self._expected.items():
            found = len(rows & self._logs[stage].keys())
            if found < len(rows) or self._unattributed.get(stage):
                short.append(f"{stage}: {found} of {len(rows)} rows' calls in its prompt log")
        return short


def latest_stage_key(book: Path, name: str, before: int | None) -> str | None:
    """`<N>_<name>` of the stage called `name` with the highest N below `before` that left a
    record or a prompt log (a deleted log still has its stage's record)."""
    pattern = re.compile(r"(\d+)_" + re.escape(name))
    best: tuple[int, str] | None = None
    for folder, suffix in (("stages", ".json"), (PROMPTS_FOLDER, ".jsonl")):
        for path in (book / folder).glob(f"*_{name}{suffix}"):
            m = pattern.fullmatch(path.name.removesuffix(suffix))
            if m is None or (before is not None and int(m.group(1)) >= before):
                continue
            if best is None or int(m.group(1)) > best[0]:
                best = (int(m.group(1)), m.group(0))
    return best[1] if best else None
