"""What the stages that build or send llm prompt parts share: the row's guard, and writing back.

A stage mixes in `GuardedStage` (after DatasetMixin), calls `_init_privacy` in its constructor
and `_setup_privacy` in setup; `row_guard(row)` gives the row's RowGuard and `store_guard`
writes what the guard changed (symbols, grown kept schema, symbolic schema, findings) back to
the row. With `masked=False` (the unmasked baseline) nothing is guarded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from masksql_pipe.engine.stage import StageRun
from stages.privacy.guard import GuardBlocked, GuardPolicy, RowGuard
from stages.privacy.value_index import ValueIndex

GUARD_KEY = "privacy_guard"
"""Row key: {where: [findings]} for every text the guard had to mask."""

KEPT_VALUES_KEY = "kept_values"
"""Row key: values the `category` privacy policy leaves unmasked (see stages.classify_values)."""

INDEX_FOLDER = "value_index"
"""Folder of the value indexes inside the bookkeeping folder."""


class GuardedStage:
    """Mixin: the privacy policy of a stage and the guard of each row."""

    privacy: dict[str, Any]
    masked: bool
    _policy: GuardPolicy
    _index_dir: Path | None = None

    def _init_privacy(self, privacy: Mapping[str, Any] | None, masked: bool) -> None:
        self._policy = GuardPolicy.from_settings(privacy)
        self.privacy = self._policy.to_dict()
        self.masked = bool(masked)

    def _setup_privacy(self, run: StageRun) -> None:
        self._index_dir = Path(run.book_dir) / INDEX_FOLDER

    def _guard(self, row: dict[str, Any], index: ValueIndex, symbols: Any = None) -> RowGuard:
        return RowGuard(
            self.full_schema(row),  # type: ignore[attr-defined]
            row.get("filtered_schema") or {},
            symbols if symbols is not None else self.symbols(row),  # type: ignore[attr-defined]
            index,
            self._policy,
            allowed_values=row.get(KEPT_VALUES_KEY) or (),
        )

    def _index(self, row: dict[str, Any]) -> ValueIndex:
        if self._index_dir is None:
            raise RuntimeError(f"{type(self).__name__}: setup() has not run")
        db_path = self.database(row)  # type: ignore[attr-defined]
        return ValueIndex.for_database(db_path, self._index_dir)

    async def row_guard(self, row: dict[str, Any], symbols: Any = None) -> RowGuard:
        """The guard of `row` (its symbols unless others are given); the value index of its
        database is built once, in a worker thread."""
        index = await asyncio.to_thread(self._index, row)
        return self._guard(row, index, symbols)

    @staticmethod
    def store_guard(row: dict[str, Any], guard: RowGuard, where: str) -> None:
        """Write the guard's findings and, when it changed them, symbols and schemas to `row`."""
        if guard.findings:
            record = row.setdefault(GUARD_KEY, {})
            record[where] = [f.to_dict() for f in guard.findings]
            guard.findings = []
        row["symbols"] = guard.symbols.to_dict()
        if guard.changed:
            kept = guard.kept_schema()
            row["filtered_schema"] = guard.filtered_schema()
            row["filtered_schema_text"] = kept.to_text(types=True)
            row["symbolic_schema"] = guard.render_schema()

    async def guard_parts(
        self, row: dict[str, Any], parts: dict[str, Any], sql_parts: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The final check before an llm prompt is rendered: every part guarded, schema proven.

        `parts` holds the texts (or lists of texts) the prompt is built from; a part named
        `schema` must be the symbolic schema: it is rebuilt when the guard added symbols and
        must consist of symbols, types and fixed words only (else GuardBlocked, in any mode).
        Parts named in `sql_parts` are SQL text (keywords and functions are not names).
        """
        if not self.masked:
            return parts
        guard = await self.row_guard(row)
        out: dict[str, Any] = {}
        for name, value in parts.items():
            if name == "schema":
                continue
            sql = name in sql_parts
            if isinstance(value, list):
                out[name] = [guard.enforce(str(v), name, sql=sql) for v in value]
            else:
                out[name] = guard.enforce(str(value), name, sql=sql)
        where = type(self).__name__
        self.store_guard(row, guard, where)
        if "question" in out:
            row["symbolic_question"] = out["question"]
        if "schema" in parts:
            schema = str(row["symbolic_schema"] if guard.changed else parts["schema"])
            if not guard.changed and schema == guard.render_schema(cells=False):
                # AddSymbolicSchema's text, written without the cells: rendered again so no
                # declared type shows a cell (a text edited by hand is only checked)
                schema = row["symbolic_schema"] = guard.render_schema()
            schema_blocked(guard.schema_problems(schema), "symbolic schema")
            out["schema"] = schema
        return {name: out[name] for name in parts}

    def verify_parts(
        self, row: dict[str, Any], parts: dict[str, Any], sql_parts: tuple[str, ...] = ()
    ) -> None:
        """The last word before a prompt is rendered: GuardBlocked if any part still carries a
        name, value, number or quoted string, or the schema part is not purely symbolic."""
        if not self.masked:
            return
        guard = self._guard(row, self._index(row))
        for name, value in parts.items():
            if name == "schema":
                schema_blocked(guard.schema_problems(str(value)), "schema part")
                continue
            texts = value if isinstance(value, list) else [value]
            for text in texts:
                found = guard.findings_in(str(text), sql=name in sql_parts)
                if found:
                    kinds = sorted({f.kind for f in found})
                    raise GuardBlocked(
                        f"privacy guard: the {name} part still carries {len(found)} sensitive "
                        f"item(s) ({', '.join(kinds)}); prompt not sent"
                    )


def schema_blocked(odd: list[str], where: str) -> None:
    """GuardBlocked naming the offending words of a schema part, if there are any.

    The message stays local (the row's error, the run's files); no prompt is sent."""
    if odd:
        shown = ", ".join(repr(w) for w in odd[:20]) + (" ..." if len(odd) > 20 else "")
        raise GuardBlocked(
            f"privacy guard: the {where} holds {len(odd)} word(s) that are not symbols, types "
            f"or structure ({shown}); prompt not sent"
        )
