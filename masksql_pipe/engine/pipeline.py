"""Pipeline: runs ordered stages over numbered files, skipping what is up to date.

A stage output is up to date when its recorded fingerprint (which covers the project code the
stage imports), its input digest and the digests of the external files it declared all still
match. An output edited by hand is kept (and makes the later stages stale); a stage interrupted
midway resumes from its row journal. One writer per data folder: a run holds the folder's lock.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from masksql_pipe.engine.dag import NodeAdapter, build_stages
from masksql_pipe.engine.files import (
    BOOKKEEPING_DIR,
    BackgroundDigest,
    BackgroundFileDigest,
    FileState,
    bookkeeping_dir,
    current_digest,
    dump_rows,
    parse_rows,
    parse_stage_file,
    read_bytes_async,
    read_rows,
    remove_leftover_temp_files,
    write_atomic,
    write_json,
)
from masksql_pipe.engine.journal import RowJournal
from masksql_pipe.engine.lock import writer_lock
from masksql_pipe.engine.partial import PartialOutput
from masksql_pipe.engine.processes import run_in_processes, uses_processes
from masksql_pipe.engine.progress import show_progress
from masksql_pipe.engine.records import (
    external_change,
    external_states,
    fingerprint_changes,
    load_record,
    pending_path,
    promote,
    refreshed_record,
)
from masksql_pipe.engine.rowstream import BLOCK, iter_row_blocks
from masksql_pipe.engine.scrub import scrub
from masksql_pipe.engine.stage import (
    ERROR_KEY,
    JsonListTransformer,
    RowCounter,
    RunOptions,
    StageRun,
)
from masksql_pipe.errors import InputError, SpecError

MAX_TRACEBACKS = 50


@dataclass
class StageState:
    """Whether a stage's output can be reused, and why not."""

    key: str
    output_path: Path
    status: str
    """One of: up to date, edited by hand, stale, missing, partial, will rerun."""
    reason: str = ""
    record: dict[str, Any] | None = None

    @property
    def reusable(self) -> bool:
        return self.status in ("up to date", "edited by hand")


@dataclass
class StageReport:
    """What happened to one stage in a run."""

    index: int
    name: str
    file: str
    status: str
    rows: int = 0
    errors: int = 0
    duration: float = 0.0
    resumed_rows: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "file": self.file,
            "status": self.status,
            "rows": self.rows,
            "errors": self.errors,
            "duration": round(self.duration, 4),
            "resumed_rows": self.resumed_rows,
            "stats": self.stats,
        }


class StageInterrupted(Exception):
    """Raised (wrapping Ctrl-C or cancellation) to say where a run stopped and what was kept."""

    def __init__(self, key: str, done: int, total: int) -> None:
        super().__init__(
            f"interrupted in stage {key} with {done}/{total} rows kept; "
            "run the same command again to resume"
        )
        self.key = key


class Pipeline:
    """An ordered chain of stages over numbered JSON files (the MaskSQL framework's Pipeline)."""

    def __init__(
        self,
        stages: Sequence[Any] | Mapping[str, Any],
        options: RunOptions | None = None,
        *,
        adapt: NodeAdapter | None = None,
        log: TextIO | None = None,
    ) -> None:
        self.stages: list[JsonListTransformer] = build_stages(stages, adapt)
        self.options = options or RunOptions()
        for stage in self.stages:
            stage.use_options(self.options)
        self.log = log if log is not None else sys.stderr
        self.reports: list[StageReport] = []
        self.tracebacks: dict[str, list[tuple[int | None, str]]] = {}

    def plan(self, input_file: Path | str) -> list[tuple[JsonListTransformer, Path, Path]]:
        """(stage, input path, output path) for every stage, checking names do not collide."""
        current = Path(input_file)
        numbered = parse_stage_file(current)
        folder = current.parent
        planned = []
        seen: dict[str, str] = {}
        for stage in self.stages:
            out = numbered.next(stage.name)
            key = out.filename.casefold()
            if key in seen or out.filename == current.name:
                raise SpecError(
                    f"stages {seen.get(key, 'input')!r} and {stage.name!r} would both write "
                    f"{folder / out.filename}"
                )
            seen[key] = stage.name
            out_path = folder / out.filename
            planned.append((stage, current, out_path))
            current, numbered = out_path, out
        return planned

    def start_after(self, first_input: Path, start: Path) -> None:
        """Keep only the stages after the one that writes ``start`` (named as in the plan from
        ``first_input``), so a run resumes from any numbered file; InputError naming the files
        this pipeline writes when none of its stages writes ``start``."""
        planned = self.plan(first_input)
        for index, (_stage, _in_path, out_path) in enumerate(planned):
            if out_path.name == start.name:
                self.stages = self.stages[index + 1 :]
                return
        choices = ", ".join([first_input.name] + [out.name for _, _, out in planned])
        raise InputError(
            f"{start}: no stage of this pipeline writes {start.name}; start from one of: {choices}"
        )

    def states(
        self, input_file: Path | str, *, recorded_endpoints: bool = False
    ) -> list[StageState]:
        """The reuse state of every stage's output, without running anything (needs no lock).

        Every output after one that will be rewritten is "will rerun", naming the first cause.
        ``recorded_endpoints`` judges model endpoints by the recorded ones (status from a shell
        without the run's OPENAI_BASE_URL): a difference is reported, not taken as a change.
        """
        states = []
        cause: StageState | None = None
        for stage, in_path, out_path in self.plan(input_file):
            state = self._state(stage, in_path, out_path, recorded_endpoints=recorded_endpoints)
            if cause is not None and state.status == "up to date":
                why = f"after {cause.key} ({cause.status})"
                state = StageState(state.key, out_path, "will rerun", why, state.record)
            elif cause is None and not state.reusable:
                cause = state
            states.append(state)
        return states

    async def run(self, input_file: Path | str) -> Path:
        """Run every stage that is not up to date; return the last file's path."""
        input_path = Path(input_file)
        folder = input_path.parent
        if not folder.is_dir():
            raise InputError(f"{folder}: data folder not found")
        if not input_path.is_file():
            raise InputError(f"{input_path}: file not found")
        planned = self.plan(input_path)
        with writer_lock(folder):
            book = bookkeeping_dir(folder)
            bookkeeping = (book, book / "stages", book / "runs", book / "batches")
            for leftover in remove_leftover_temp_files(folder, *bookkeeping):
                self._say(f"removed {leftover}, left by an interrupted write")
            for stage in self.stages:
                stage.preflight(folder)
            self.reports = []
            last = input_path
            for stage, in_path, out_path in planned:
                forced = self.options.force or (
                    self.options.from_number is not None
                    and parse_stage_file(out_path).number > self.options.from_number
                )
                report = await self._run_stage(stage, in_path, out_path, book, forced)
                report.index = parse_stage_file(out_path).number
                self.reports.append(report)
                last = out_path
        return last

    @property
    def total_errors(self) -> int:
        """Rows that failed in the stages of the last run."""
        return sum(report.errors for report in self.reports)

    # -- one stage ---------------------------------------------------------------------------

    def _state(
        self,
        stage: JsonListTransformer,
        in_path: Path,
        out_path: Path,
        *,
        recorded_endpoints: bool = False,
    ) -> StageState:
        key = out_path.stem
        book = in_path.parent / BOOKKEEPING_DIR
        record, problem, _pending = load_record(book, key, out_path)
        journal = book / "journal" / f"{key}.jsonl"
        if not out_path.exists():
            if journal.exists() or journal.with_suffix(".partial").exists():
                return StageState(key, out_path, "partial", "interrupted; rows journaled", record)
            return StageState(key, out_path, "missing", "not run yet", record)
        if record is None:
            why = "record malformed (see warning)" if problem else "no record of how it was made"
            if problem:
                self._warn(problem)
            return StageState(key, out_path, "stale", why, record)
        note = ""
        stage.remember(record)
        if record["fingerprint"] != stage.fingerprint():
            endpoint, other = fingerprint_changes(record.get("parts"), stage.fingerprint_parts())
            if other or not recorded_endpoints:
                changes = other + endpoint
                shown = "; ".join(changes[:3]) + (" ..." if len(changes) > 3 else "")
                return StageState(key, out_path, "stale", f"changed: {shown}", record)
            note = f"judged by the recorded endpoint ({'; '.join(endpoint)} in this shell)"
        in_known = FileState.from_dict(record["input"])
        if current_digest(in_path, in_known) != (in_known.digest if in_known else None):
            return StageState(key, out_path, "stale", f"input {in_path.name} changed", record)
        external = external_change(record, in_path.parent)
        if external:
            return StageState(key, out_path, "stale", external, record)
        out_known = FileState.from_dict(record["output"])
        if current_digest(out_path, out_known) != (out_known.digest if out_known else None):
            return StageState(key, out_path, "edited by hand", "kept; later stages rerun", record)
        return StageState(key, out_path, "up to date", note, record)

    async def _run_stage(
        self,
        stage: JsonListTransformer,
        in_path: Path,
        out_path: Path,
        book: Path,
        forced: bool,
    ) -> StageReport:
        key = out_path.stem
        state = self._state(stage, in_path, out_path)
        record = state.record or {}
        _, _, pending = load_record(book, key, out_path)
        if pending and state.record is not None:
            promote(book, key, state.record)  # killed after the rename: the file is ours
        pending_path(book, key).unlink(missing_ok=True)
        retry = self.options.retry_errors and state.reusable and record.get("errors", 0) > 0
        if state.reusable and not forced and not retry:
            fresh = None
            if state.status == "up to date" and state.record is not None:
                fresh = refreshed_record(state.record, in_path, out_path, in_path.parent)
            if fresh is not None:  # touched or copied: content confirmed, record its new mtime
                promote(book, key, fresh)
            self._say(f"{key}: {state.status}, skipped")
            return StageReport(
                0,
                stage.name,
                out_path.name,
                state.status,
                rows=record.get("rows", 0),
                errors=record.get("errors", 0),
                stats=dict(record.get("stats") or {}),
            )

        started = time.monotonic()
        if streams(stage) and not retry and not (book / "journal" / f"{key}.jsonl").exists():
            return await self._stream(stage, in_path, out_path, book, forced, started)
        raw = await read_bytes_async(in_path)
        in_digest = BackgroundDigest(raw)
        rows = parse_rows(raw, in_path)
        if ERROR_KEY.encode() in raw:  # a scan in C; the rows are looked at only if needed
            check_error_fields(rows, in_path)
        in_state = FileState.of_bytes(in_path, raw, in_digest.result())
        del raw
        # the parsed rows are long-lived and hold no cycles: keep the collector off them
        gc.freeze()
        try:
            return await self._compute(
                stage, rows, in_path, in_state, out_path, book, retry, forced, started
            )
        finally:
            gc.unfreeze()

    async def _compute(
        self,
        stage: JsonListTransformer,
        rows: list[dict[str, Any]],
        in_path: Path,
        in_state: FileState,
        out_path: Path,
        book: Path,
        retry: bool,
        forced: bool,
        started: float,
    ) -> StageReport:
        """Process the rows not yet done, write the stage file and its record."""
        key = out_path.stem
        fingerprint = stage.fingerprint()
        counter = RowCounter()
        results: dict[int, dict[str, Any]] = {}

        too_deep: list[tuple[int, list[str]]] = []

        def unserializable(
            index: int, row: dict[str, Any], exc: TypeError
        ) -> dict[str, Any] | None:
            bad = [k for k, v in row.items() if not _serializable(v)]
            if "Recursion limit" in str(exc):
                too_deep.append((index, bad))  # stops the stage below: never drop the field
                return None
            kept = {k: v for k, v in row.items() if k not in bad}
            failed = stage.failed_row(kept, exc)
            failed[ERROR_KEY]["message"] = f"fields {', '.join(bad)} are not JSON-serializable"
            results[index] = failed
            counter.errors += 1
            return failed

        journal = RowJournal(
            book / "journal" / f"{key}.jsonl",
            {"stage": key, "fingerprint": fingerprint, "input": in_state.digest},
            on_unserializable=unserializable,
        )

        done: dict[int, dict[str, Any]] = {}
        status = "ran"
        if retry:
            previous = read_rows(out_path)
            if len(previous) == len(rows):
                done = {
                    i: row
                    for i, row in enumerate(previous)
                    if row.get(ERROR_KEY, {}).get("stage") != stage.name
                }
                status = "retried errors"
        elif not forced:
            done = journal.load()
            done = {i: row for i, row in done.items() if i < len(rows)}
            if journal.rejected:
                self._warn(
                    f"{journal.path}: {journal.rejected} lines damaged or written by another "
                    "run were ignored; their rows are processed again"
                )
            if done:
                status = "resumed"
        if done and getattr(stage, "whole_list", False):
            done, status = {}, "ran"  # its figures cover every row: never a part of them
        todo = [i for i in range(len(rows)) if i not in done]
        resumed = len(done) if status == "resumed" else 0
        if status != "ran":
            self._say(f"{key}: {status}, {len(todo)} of {len(rows)} rows to process")

        stage.stats = {}
        stage._tracebacks.clear()
        run = StageRun(in_path.parent, book, key, in_path, out_path, self.options, rows)
        counter.total = len(todo)
        results.update(done)

        def on_done(index: int, row: dict[str, Any]) -> None:
            journal.append(index, row)
            results[index] = row

        await stage.setup(run)
        try:
            external = external_states(
                stage.external_files(rows), in_path.parent, record_external(book, key)
            )
            journal.open(keep=status == "resumed")
            try:
                async with show_progress(key, counter, self.options.progress, self.log):
                    if self._in_processes(stage):
                        await run_in_processes(
                            stage,
                            ((i, rows[i]) for i in todo),
                            on_done,
                            counter,
                            self.options.concurrency,
                            self.options.workers,
                        )
                    else:
                        await stage.process_rows(
                            rows, todo, on_done, counter, self.options.concurrency
                        )
            except BaseException as exc:
                journal.close()
                if isinstance(exc, Exception):
                    raise
                raise StageInterrupted(key, len(results), len(rows)) from exc
        finally:
            await stage.teardown()

        journal.flush()  # also swaps in an error row for any result orjson cannot serialize
        if too_deep:
            journal.close()  # the other rows stay journaled for the next run
            index, fields = too_deep[0]
            raise InputError(
                f"{in_path}: row {index}: field {', '.join(map(repr, fields))} is nested more "
                "than 254 levels deep, which a stage file cannot hold; flatten it"
            )
        output = [results[i] for i in range(len(rows)) if i in results]  # filters drop rows
        data = dump_rows(output)
        out_digest = BackgroundDigest(data)
        self._keep_hand_edits(out_path, book)
        totals = Totals(stage.name)
        totals.add(output)
        pending_state = FileState(len(data), 0, out_digest.result())
        record = self._record(
            stage, in_path, in_state, external, out_path, pending_state, totals, started
        )
        write_json(pending_path(book, key), record)
        await asyncio.to_thread(write_atomic, out_path, data)  # fsync off the event loop
        out_state = FileState.of_bytes(out_path, data, pending_state.digest)
        del data
        record["output"] = {"file": out_path.name, **out_state.to_dict()}
        promote(book, key, record)
        journal.remove()
        return self._finished(stage, key, status, record, resumed)

    def _record(
        self,
        stage: JsonListTransformer,
        in_path: Path,
        in_state: FileState,
        external: dict[str, Any],
        out_path: Path,
        out_state: FileState,
        totals: Totals,
        started: float,
    ) -> dict[str, Any]:
        """The stage record, written as pending before the output is renamed into place."""
        key = out_path.stem
        self.tracebacks[key] = stage._tracebacks[:MAX_TRACEBACKS]
        record = {
            "stage": stage.name,
            "class": f"{type(stage).__module__}.{type(stage).__qualname__}",
            "fingerprint": stage.fingerprint(),
            "parts": stage.fingerprint_parts(),
            "params": stage.describe_params(),
            "input": {"file": in_path.name, **in_state.to_dict()},
            "external": external,
            "output": {"file": out_path.name, **out_state.to_dict()},
            "rows": totals.rows,
            "errors": totals.errors,
            "failed_earlier": totals.earlier,
            "total_toks": totals.toks if totals.seen else None,
            "total_latency": round(totals.latency, 4) if totals.seen else None,
            "duration": round(time.monotonic() - started, 4),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "stats": stage.stats,
            "tracebacks": [{"row": row, "traceback": text} for row, text in self.tracebacks[key]],
        }
        return scrub(record)  # a key in a parameter or a traceback never reaches the file

    def _finished(
        self,
        stage: JsonListTransformer,
        key: str,
        status: str,
        record: dict[str, Any],
        resumed: int,
    ) -> StageReport:
        """Say what the stage did and report it."""
        errors, duration = record["errors"], record["duration"]
        note = f", {errors} failed" if errors else ""
        self._say(f"{key}: {record['rows']} rows in {duration:.2f}s{note}")
        return StageReport(
            0,
            stage.name,
            record["output"]["file"],
            status,
            rows=record["rows"],
            errors=errors,
            duration=duration,
            resumed_rows=resumed,
            stats=dict(stage.stats),
        )

    async def _stream(
        self,
        stage: JsonListTransformer,
        in_path: Path,
        out_path: Path,
        book: Path,
        forced: bool,
        started: float,
    ) -> StageReport:
        """Run a stage with rows streamed from its input to its output in bounded memory: read
        a block, process, write in order; the partial output is the crash journal."""
        key = out_path.stem
        stat = in_path.stat()
        in_size, in_mtime = stat.st_size, stat.st_mtime_ns
        totals, counter = Totals(stage.name), RowCounter()
        too_deep: list[tuple[int, list[str]]] = []

        def repair(index: int, row: dict[str, Any], exc: TypeError) -> dict[str, Any]:
            bad = [k for k, v in row.items() if not _serializable(v)]
            if "Recursion limit" in str(exc):
                too_deep.append((index, bad))  # stops the stage below
            failed = stage.failed_row({k: v for k, v in row.items() if k not in bad}, exc)
            failed[ERROR_KEY]["message"] = f"fields {', '.join(bad)} are not JSON-serializable"
            counter.errors += 1
            return failed

        window = max(1024, 4 * (stage.concurrency or self.options.concurrency))
        header = {"stage": key, "fingerprint": stage.fingerprint(), "layout": 1}
        output = PartialOutput(book / "journal", key, header, totals.add, repair, window)
        reused, spilled, in_digest = self._restart(output, in_path, forced)
        status = "resumed" if reused or spilled else "ran"
        if status == "resumed":
            self._say(f"{key}: resumed, {reused + len(spilled)} rows kept")
        blocks = iter_row_blocks(in_path)
        first = next(blocks, [])
        estimate = max(len(first), len(first) * in_size // BLOCK)  # exact once all is read
        counter.total = max(1, estimate - reused - len(spilled))
        for index in sorted(spilled):
            output.put(index, spilled[index])

        def pairs() -> Iterator[tuple[int, dict[str, Any]]]:
            index = 0
            for rows in itertools.chain([first], blocks):
                check_error_fields(rows, in_path, index)
                for row in rows:
                    if index >= reused and index not in spilled:
                        yield index, row
                    index += 1
            counter.total = index - reused - len(spilled)

        stage.stats = {}
        stage._tracebacks.clear()
        run = StageRun(in_path.parent, book, key, in_path, out_path, self.options, first)
        await stage.setup(run)
        try:
            external = external_states(
                stage.external_files([]), in_path.parent, record_external(book, key)
            )
            try:
                async with show_progress(key, counter, self.options.progress, self.log):
                    if self._in_processes(stage):
                        await run_in_processes(
                            stage,
                            pairs(),
                            output.put,
                            counter,
                            self.options.concurrency,
                            self.options.workers,
                            room=output,
                        )
                    else:
                        await stage.run_pairs(
                            pairs(), output.put, counter, self.options.concurrency, room=output
                        )
            except BaseException as exc:
                output.close(spill=not isinstance(exc, Exception))
                if isinstance(exc, Exception):
                    raise
                kept = output.next + len(output.waiting)
                raise StageInterrupted(key, kept, kept + counter.total - counter.done) from exc
        finally:
            await stage.teardown()
        output.flush()
        if too_deep:
            output.close()
            output.remove()  # a partial without the field must not be reused
            index, fields = too_deep[0]
            raise InputError(
                f"{in_path}: row {index}: field {', '.join(map(repr, fields))} is nested more "
                "than 254 levels deep, which a stage file cannot hold; flatten it"
            )
        size, out_sha = output.finish()
        in_state = FileState(in_size, in_mtime, in_digest.result(in_path))
        self._keep_hand_edits(out_path, book)
        record = self._record(
            stage,
            in_path,
            in_state,
            external,
            out_path,
            FileState(size, 0, out_sha),
            totals,
            started,
        )
        write_json(pending_path(book, key), record)
        output.move_to(out_path)
        out_stat = out_path.stat()
        record["output"] = {
            "file": out_path.name,
            **FileState(out_stat.st_size, out_stat.st_mtime_ns, out_sha).to_dict(),
        }
        promote(book, key, record)
        return self._finished(stage, key, status, record, reused + len(spilled))

    def _restart(
        self, output: PartialOutput, in_path: Path, forced: bool
    ) -> tuple[int, dict[int, dict[str, Any]], BackgroundFileDigest]:
        """Rows an interrupted run of this stage on this input left (written ones, counted, and
        those it finished out of order), and the input's digest on its way."""
        if forced or not output.data_path.exists():
            output.reuse(None)
            return 0, {}, BackgroundFileDigest(in_path, then=output.input_known)
        in_digest = BackgroundFileDigest(in_path)
        known = in_digest.result(in_path)
        reused = output.reuse(known)
        output.input_known(known)
        if output.rejected:
            self._warn(
                f"{output.data_path}: {output.rejected} batches torn, damaged or written by "
                "another run were ignored; their rows are processed again"
            )
        return reused, output.spilled(reused), in_digest

    def _in_processes(self, stage: JsonListTransformer) -> bool:
        """Whether the stage's rows go to worker processes: it declares ``processes``, runs the
        engine's own row loop (no ``process_rows`` of its own) and the run has workers."""
        own_loop = type(stage).process_rows is JsonListTransformer.process_rows
        return own_loop and uses_processes(stage, self.options.workers)

    def _keep_hand_edits(self, out_path: Path, book: Path) -> None:
        """Copy an output we did not write as it is now (hand-edited, or foreign) aside first.

        Rerunning a stage whose code changed must not silently drop a researcher's edits.
        """
        if not out_path.exists():
            return
        record, _, _ = load_record(book, out_path.stem, out_path)
        known = FileState.from_dict(record.get("output")) if record is not None else None
        if known is not None and current_digest(out_path, known) == known.digest:
            return
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        kept = book / "replaced" / f"{out_path.stem}.{stamp}.json"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out_path, kept)
        self._say(f"{out_path.name} had changes this pipeline did not make; a copy is in {kept}")

    def _say(self, message: str) -> None:
        if self.log is not None and self.options.progress is not False:
            print(message, file=self.log, flush=True)

    def _warn(self, message: str) -> None:
        """A one-line warning about bookkeeping that was ignored (shown once per message)."""
        shown = self.__dict__.setdefault("_warned", set())
        if self.log is not None and message not in shown:
            shown.add(message)
            print(f"warning: {message}", file=self.log, flush=True)


def record_external(book: Path, key: str) -> dict[str, Any] | None:
    """External file states of the stage's current record (their size+mtime shortcut)."""
    record, _, _ = load_record(book, key, book.parent / f"{key}.json")
    return record.get("external") if record else None


def check_error_fields(rows: list[dict[str, Any]], path: Path, start: int = 0) -> None:
    """Every ``pipe_error`` must be an object, as stages read it; else one line naming the row
    (``start``: index of ``rows[0]`` in the file)."""
    for index, row in enumerate(rows, start):
        failure = row.get(ERROR_KEY)
        if failure is not None and not isinstance(failure, dict):
            raise InputError(
                f"{path}: row {index}: field {ERROR_KEY!r} is not an object "
                "(expected {stage, type, message}); fix or remove it"
            )


def _serializable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


@dataclass
class Totals:
    """Figures of a stage's output, added up a batch of rows at a time: rows, rows failed here,
    rows failed earlier, and sums of total_toks and total_latency (``seen``: any row has them)."""

    stage: str
    rows: int = 0
    errors: int = 0
    earlier: int = 0
    toks: int = 0
    latency: float = 0.0
    seen: bool = False

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.rows += len(rows)
        for row in rows:
            failure = row.get(ERROR_KEY)
            if failure is not None:
                if failure.get("stage") == self.stage:
                    self.errors += 1
                else:
                    self.earlier += 1
            value = row.get("total_toks")
            if value is not None:
                self.toks += int(value)
                self.seen = True
                self.latency += float(row.get("total_latency") or 0.0)


def streams(stage: JsonListTransformer) -> bool:
    """Whether rows can stream through ``stage`` (see ``JsonListTransformer.needs_whole_list``)."""
    return not stage.needs_whole_list()
