"""JsonListTransformer: one stage that turns a list of rows into a list of rows, row by row."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import inspect
import os
import traceback
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import orjson

from masksql_pipe.engine.files import check_stage_name
from masksql_pipe.engine.fingerprints import module_closure, module_closure_digest
from masksql_pipe.engine.scrub import scrub_text
from masksql_pipe.errors import StageFatal, error_context

ERROR_KEY = "pipe_error"
"""Reserved row key for a per-row failure: ``{"stage", "type", "message"}``."""

MAX_ERROR_MESSAGE = 2000

_row_index: contextvars.ContextVar[int | None] = contextvars.ContextVar("row_index", default=None)


def current_row_index() -> int | None:
    """Index (in the stage's input file) of the row being processed, for logs and hooks."""
    return _row_index.get()


@dataclass
class RunOptions:
    """Settings of one pipeline run that stages may consult."""

    concurrency: int = 16
    force: bool = False
    from_number: int | None = None
    retry_errors: bool = False
    no_cache: bool = False
    progress: bool | None = None
    start: int = 0
    """First row kept by a pipeline's LimitJson stage."""
    limit: int | None = None
    """Rows kept by a pipeline's LimitJson stage (None: all)."""
    registry: Any = None
    """Model registry for model stages; None builds one from the environment."""
    batch: bool = False
    """Send model stages' prompts through the provider's batch API (`--batch`)."""
    budget: Any = None
    """A `masksql_pipe.lm.pricing.Budget` capping the run's dollars (`--budget`), or None."""
    run_id: str | None = None
    """The run record's id: prompt-log lines carry it, so a row's calls can be told apart
    from earlier runs' (whose row numbers may even mean other rows, after another --start)."""
    workers: int = field(default_factory=lambda: default_workers())
    """Processes that compute the rows of a stage declaring ``processes = True`` (`--workers`;
    default: the machine's cores; 1: in-process)."""


def default_workers() -> int:
    """Worker processes of a run unless ``--workers`` says otherwise: the machine's cores."""
    return os.cpu_count() or 1


INCOMPLETE_STAT = "incomplete"
"""Key of a stage's stats saying, in one line, that its result cannot be trusted as complete
(e.g. an audit that could not read everything it must): the run prints it and exits 1, and so
does every rerun that reuses the output until the cause is fixed."""


@dataclass
class StageRun:
    """Where a stage runs: handed to ``setup`` so a stage can find its bookkeeping."""

    data_dir: Path
    book_dir: Path
    stage_key: str
    input_path: Path
    output_path: Path
    options: RunOptions = field(default_factory=RunOptions)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """The parsed input rows (read-only for setup: e.g. render the first prompt early)."""


@dataclass
class RowCounter:
    """Live figures of a running stage; read by the progress display."""

    total: int = 0
    done: int = 0
    errors: int = 0
    passed: int = 0
    """Rows passed through untouched (failed in an earlier stage): done, but no work to time."""
    note: str = ""
    """A short status shown beside the counts (e.g. a batch's state while it is polled)."""


class JsonListTransformer(ABC):
    """A pipeline stage: ``_process_row`` maps one row (a dict) to its updated row.

    The engine owns files, concurrency, per-row errors and resume. A stage declares what it
    does to a row and, through its constructor parameters, ``version`` and
    ``fingerprint_extra``, what makes its earlier outputs stale.
    """

    version: ClassVar[str] = "1"
    concurrency: int | None = None
    """Upper bound on rows in flight for this stage (None: the run's setting)."""
    whole_list: ClassVar[bool] = False
    """True for a stage that needs every row at once (a summary over the run): the engine then
    reads the whole file instead of streaming rows through the stage."""
    processes: ClassVar[bool] = False
    """True for a stage whose rows are CPU work and call no model: with ``--workers N`` its rows
    are computed by N forked processes (see ``masksql_pipe.engine.processes``). Such a stage
    keeps nothing across rows (``stats`` set in ``_process_row`` stay in the worker)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> JsonListTransformer:
        self = super().__new__(cls)
        self._init_args = (args, kwargs)
        self.stats = {}
        return self

    _init_args: tuple[tuple[Any, ...], dict[str, Any]]
    stats: dict[str, Any]

    @property
    def name(self) -> str:
        """Stage name, used in the output file name; the class name unless set."""
        return self.__dict__.get("_name") or type(self).__name__

    @name.setter
    def name(self, value: str) -> None:
        self._name = check_stage_name(value)

    def needs_whole_list(self) -> bool:
        """Whether the engine must hand this stage every row at once instead of streaming
        them: it declares ``whole_list``, runs its own ``process_rows`` or reads files."""
        cls = type(self)
        return (
            self.whole_list
            or cls.process_rows is not JsonListTransformer.process_rows
            or cls.external_files is not JsonListTransformer.external_files
        )

    def named(self, name: str) -> JsonListTransformer:
        """Set the stage name and return the stage, for use inside lists."""
        self.name = name
        return self

    @abstractmethod
    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Return the updated row; it may be the same dict, changed in place.

        If it raises, the row is written with the error added, as the stage left it.
        """

    async def setup(self, run: StageRun) -> None:  # noqa: B027 - optional hook
        """Once before any row: compile templates, resolve models; raise to stop early."""

    def setup_worker(self) -> None:  # noqa: B027 - optional hook
        """In each worker process of a ``processes`` stage, after the fork and before its first
        row: open what must not be shared across a fork (e.g. a SQLite connection made in
        ``setup``). The rest of what ``setup`` left is inherited."""

    async def teardown(self) -> None:  # noqa: B027 - optional hook
        """Once after the rows, also after a failure or interruption."""

    def fingerprint_extra(self) -> dict[str, Any]:
        """Extra JSON-able parts of the fingerprint (template text, model settings)."""
        return {}

    def remember(self, record: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Called with the stage's last record before its fingerprint is compared to it (a
        stage whose fingerprint covers what its last run read, such as the configuration keys
        a function looked up, takes that from the record's ``parts``)."""

    def use_options(self, options: RunOptions) -> None:  # noqa: B027 - optional hook
        """Called with the run's options before fingerprints are taken (e.g. its model registry)."""

    def params(self) -> dict[str, Any]:
        """Constructor arguments by parameter name, defaults filled in."""
        args, kwargs = self._init_args
        try:
            bound = inspect.signature(type(self).__init__).bind(None, *args, **kwargs)
        except TypeError:
            return {"args": list(args), **kwargs}
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop(next(iter(params)))  # self
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD and name in params:
                params.update(params.pop(name))
        return params

    def fingerprint_parts(self) -> dict[str, Any]:
        """What the fingerprint hashes, as JSON: recorded so a mismatch can say what changed."""
        cls = type(self)
        parts = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "source": class_source_digest(cls),
            "code": module_closure(cls.__module__),
            "version": cls.version,
            "params": self.params(),
            "extra": self.fingerprint_extra(),
        }
        return orjson.loads(orjson.dumps(parts, default=_fingerprint_default))

    def fingerprint(self) -> str:
        """Digest of everything that determines this stage's output for a given input."""
        return fingerprint_of(self.fingerprint_parts())

    def external_files(self, rows: list[dict[str, Any]]) -> list[Path]:
        """Files outside the chain of stage files that this stage reads (called after setup).

        The engine records their size, mtime and digest; a change makes the output stale.
        """
        return []

    def preflight(self, data_dir: Path) -> None:  # noqa: B027 - optional hook
        """Check dataset-level inputs before the first stage of a run; raise InputError."""

    def describe_params(self) -> dict[str, Any]:
        """Constructor parameters as JSON-able values, for records and run logs."""
        return orjson.loads(orjson.dumps(self.params(), default=_fingerprint_default))

    async def process_rows(
        self,
        rows: list[dict[str, Any]],
        indices: Iterable[int],
        on_done: Callable[[int, dict[str, Any]], None],
        counter: RowCounter,
        concurrency: int,
    ) -> None:
        """Run ``_process_row`` over ``rows[i]`` for each index, at most ``concurrency`` at once.

        ``on_done(index, row)`` is called as each row finishes (the engine journals it there).
        A failing row is recorded with ERROR_KEY and never stops the others. Workers pull
        indices from one shared iterator, so no task is created per row, and rows are not
        copied: on a file of 200,000 rows a copy each would cost more than the JSON parse.
        """
        await self.run_pairs(((i, rows[i]) for i in indices), on_done, counter, concurrency)

    async def run_pairs(
        self,
        pairs: Iterator[tuple[int, dict[str, Any]]],
        on_done: Callable[[int, dict[str, Any]], None],
        counter: RowCounter,
        concurrency: int,
        room: Any = None,
    ) -> None:
        """The worker loop of ``process_rows`` over ``(index, row)`` pairs, which may be read
        from a file as the workers take them (the engine's streaming path).

        ``room``, when given, bounds the rows finished out of order: while ``room.full()``
        a worker awaits ``room.wait()`` before taking another row.
        """
        pending = iter(pairs)
        limit = max(1, self.concurrency or concurrency)

        process = self._process_row

        async def worker() -> None:
            while True:
                if room is not None and room.full():
                    await room.wait()
                item = next(pending, None)
                if item is None:
                    return
                index, row = item
                if ERROR_KEY in row:
                    on_done(index, row)  # failed in an earlier stage: passed through untouched
                    counter.done += 1
                    counter.passed += 1
                    continue
                token = _row_index.set(index)
                try:
                    result = await process(row)
                    if not isinstance(result, dict):
                        raise TypeError(
                            f"_process_row returned {type(result).__name__}, expected a dict"
                        )
                except Exception as exc:
                    if isinstance(exc, StageFatal):
                        raise  # e.g. a rejected API key: every other row would fail the same way
                    result = self._failed(row, exc)
                    counter.errors += 1
                finally:
                    _row_index.reset(token)
                on_done(index, result)
                counter.done += 1

        if limit == 1:
            await worker()
            return
        try:
            async with asyncio.TaskGroup() as group:  # one fatal error stops every worker
                for _ in range(limit):
                    group.create_task(worker())
        except BaseExceptionGroup as failure:
            raise failure.exceptions[0] from None

    def failed_row(self, row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        """A copy of ``row`` carrying the error record of this stage, counted by the engine."""
        return self._failed(row, exc)

    def _failed(self, row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        failed = dict(row)
        message = str(exc) or repr(exc)
        context = error_context(exc)
        if context:  # ExceptionContext blocks the error left through, outermost first
            message = f"{'; '.join(c.rstrip('. ') for c in context)}: {message}"
        failed[ERROR_KEY] = {
            "stage": self.name,
            "type": type(exc).__name__,
            "message": scrub_text(message)[:MAX_ERROR_MESSAGE],
        }
        if context:
            failed[ERROR_KEY]["context"] = [scrub_text(item) for item in context]
        self._tracebacks.append((current_row_index(), scrub_text(traceback.format_exc(limit=20))))
        return failed

    @property
    def _tracebacks(self) -> list[tuple[int | None, str]]:
        return self.__dict__.setdefault("_traceback_list", [])


class WholeListTransformer(JsonListTransformer):
    """A stage that works on the whole list at once (an audit or figures over every row):
    ``process_list`` sees all rows, has no per-row step, and may set ``stats`` at the end."""

    whole_list: ClassVar[bool] = True
    """Declares that the stage needs the whole file: an engine that streams rows must hand it
    every row before it can finish."""

    @abstractmethod
    def process_list(
        self, rows: list[dict[str, Any]], indices: list[int]
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Yield ``(index, row)`` for each of ``indices`` as its row is done (``rows`` is the
        whole list, rows failed earlier included); a row it cannot do is yielded as
        ``self.failed_row(row, exc)``."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        raise TypeError(f"{self.name} works on the whole list: it has no per-row step")

    async def process_rows(
        self,
        rows: list[dict[str, Any]],
        indices: Iterable[int],
        on_done: Callable[[int, dict[str, Any]], None],
        counter: RowCounter,
        concurrency: int,
    ) -> None:
        """Record each row ``process_list`` yields; a row that newly carries an error counts
        as one (a row failed by an earlier stage keeps its error and is not counted again)."""
        async for index, row in self.process_list(rows, list(indices)):
            if ERROR_KEY in row and ERROR_KEY not in rows[index]:
                counter.errors += 1
            on_done(index, row)
            counter.done += 1


def fingerprint_of(parts: dict[str, Any]) -> str:
    """The fingerprint of recorded or current ``fingerprint_parts``."""
    data = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:32]


@functools.cache
def class_source_digest(cls: type) -> str:
    """Digest of a stage class's own source, so editing its code makes its outputs stale.

    The project modules it imports are covered by ``module_closure_digest`` beside it.
    """
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _fingerprint_default(value: Any) -> Any:
    """JSON stand-in for constructor arguments orjson cannot serialize, stable across runs."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, JsonListTransformer):
        return {"stage": type(value).__qualname__, "fingerprint": value.fingerprint()}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):  # a pydantic settings object
        return {"settings": type(value).__qualname__, **dump(mode="json")}
    if callable(value):
        name = getattr(value, "__qualname__", type(value).__qualname__)
        try:
            source = inspect.getsource(value)
        except (OSError, TypeError):
            source = ""
        module = getattr(value, "__module__", None)
        return {
            "callable": name,
            "source": hashlib.sha256(source.encode()).hexdigest()[:16],
            "code": module_closure_digest(module) if isinstance(module, str) else "",
        }
    if hasattr(value, "settings") and callable(value.settings):
        return {"object": type(value).__qualname__, "settings": value.settings()}
    if hasattr(value, "__dict__"):
        return {"object": type(value).__qualname__, **vars(value)}
    return repr(value)
