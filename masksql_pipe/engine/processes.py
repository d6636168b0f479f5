"""Rows of a CPU-bound stage (``processes = True``) computed by forked worker processes.

The workers are forked once per stage run from the parent, so they inherit the imported code and
the stage object as ``setup`` left it (each then calls the stage's ``setup_worker``). The parent
keeps reading the input, ordering and journaling the rows: a worker only receives chunks of
``(index, row)`` pairs over a pipe, runs the stage's own row loop on them and sends back the
finished rows, its error count and tracebacks. Nothing a worker does touches a file of the run,
so crash safety is the parent's as before. Fewer than ``MIN_ROWS`` rows, one worker or no
``os.fork`` run in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import signal
import struct
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from masksql_pipe.engine.stage import ERROR_KEY, JsonListTransformer, RowCounter

Row = dict[str, Any]
Pair = tuple[int, Row]

MIN_ROWS = 33
"""Rows below which a stage runs in-process: forking would cost more than it saves."""
CHUNK = 16
"""Rows sent to a worker at a time."""
DEPTH = 2
"""Chunks in flight per worker: one being computed, one waiting, so a worker never idles."""

ROWS_IN_FLIGHT = 1
"""Rows a worker has in flight at once: its rows are CPU work, so more threads in one process
only contend for its interpreter lock (measured over 548 rows: 16 in flight cost CalcExecAcc
1.5x the CPU of 1, and 2 cost ExecuteConcreteSql 1.25x)."""

_HEADER = struct.Struct("!IB")
_JSON, _PICKLE, _FATAL = 0, 1, 2


def uses_processes(stage: JsonListTransformer, workers: int) -> bool:
    """Whether ``stage`` runs its rows in worker processes with ``workers`` of them."""
    return bool(getattr(stage, "processes", False)) and workers > 1 and hasattr(os, "fork")


async def run_in_processes(
    stage: JsonListTransformer,
    pairs: Iterator[Pair],
    on_done: Callable[[int, Row], None],
    counter: RowCounter,
    concurrency: int,
    workers: int,
    room: Any = None,
) -> None:
    """``stage.run_pairs`` over ``pairs`` with the rows computed by ``workers`` processes.

    ``on_done`` sees every row once, in the order chunks come back (``room`` bounds how far
    ahead of the oldest unfinished row the parent hands out work, as in-process).
    """
    pending = iter(pairs)
    head = list(itertools.islice(pending, MIN_ROWS))
    source = itertools.chain(head, pending)
    if len(head) < MIN_ROWS or not uses_processes(stage, workers):
        await stage.run_pairs(source, on_done, counter, concurrency, room)
        return

    def take() -> list[Pair]:
        """The next chunk; rows failed in an earlier stage pass through here, untouched."""
        chunk: list[Pair] = []
        for index, row in source:
            if ERROR_KEY in row:
                on_done(index, row)
                counter.done += 1
                counter.passed += 1
                continue
            chunk.append((index, row))
            if len(chunk) >= CHUNK:
                break
        return chunk

    def finished(message: tuple[int, list[list[Any]], list[Any]]) -> None:
        errors, tracebacks, rows = message
        for index, row in rows:
            on_done(index, row)
            counter.done += 1
        counter.errors += errors
        stage._tracebacks.extend((index, text) for index, text in tracebacks)

    in_flight = min(concurrency, stage.concurrency or concurrency, ROWS_IN_FLIGHT)
    pool = await _Pool.start(stage, min(workers, 64), in_flight)
    try:
        async with asyncio.TaskGroup() as group:
            for worker in pool.workers:
                group.create_task(worker.drive(take, finished, room))
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from None
    finally:
        pool.stop()


class _Worker:
    """The parent's end of one worker process: its pid and the two pipes."""

    def __init__(
        self,
        pid: int,
        tasks: asyncio.StreamWriter,
        results: asyncio.StreamReader,
        reading: asyncio.BaseTransport,
    ) -> None:
        self.pid, self.tasks, self.results, self.reading = pid, tasks, results, reading

    async def drive(
        self,
        take: Callable[[], list[Pair]],
        finished: Callable[[Any], None],
        room: Any,
    ) -> None:
        """Keep ``DEPTH`` chunks in flight until the rows run out, then close the task pipe."""
        inflight, exhausted = 0, False
        while True:
            while not exhausted and inflight < DEPTH and not (room is not None and room.full()):
                chunk = take()
                if not chunk:
                    exhausted = True
                    break
                try:
                    self.tasks.write(_frame(chunk))
                    await self.tasks.drain()
                except ConnectionError:  # the worker stopped: its last replies say why
                    while True:
                        finished(await self.receive())
                inflight += 1
            if inflight == 0:
                if exhausted:
                    break
                await room.wait()
                continue
            finished(await self.receive())
            inflight -= 1
        self.tasks.close()

    async def receive(self) -> Any:
        """The next reply; a worker's fatal error is raised here, a vanished worker too."""
        try:
            size, kind = _HEADER.unpack(await self.results.readexactly(_HEADER.size))
            payload = await self.results.readexactly(size)
        except asyncio.IncompleteReadError:
            raise RuntimeError(f"worker process {self.pid} ended unexpectedly") from None
        if kind == _FATAL:
            raise pickle.loads(payload)
        return orjson.loads(payload) if kind == _JSON else pickle.loads(payload)


class _Pool:
    """Forked workers of one stage run."""

    def __init__(self) -> None:
        self.workers: list[_Worker] = []
        self.pids: list[int] = []

    @classmethod
    async def start(cls, stage: JsonListTransformer, count: int, concurrency: int) -> _Pool:
        pool = cls()
        loop = asyncio.get_running_loop()
        parent_ends: list[int] = []
        die_with_parent = _death_signal()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            for _ in range(count):
                task_read, task_write = os.pipe()
                result_read, result_write = os.pipe()
                with warnings.catch_warnings():  # 3.12+ warns when forking a threaded process
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:  # the child never returns from here
                    for fd in (*parent_ends, task_write, result_read):
                        os.close(fd)
                    _child(stage, task_read, result_write, concurrency, die_with_parent)
                os.close(task_read)
                os.close(result_write)
                parent_ends += [task_write, result_read]
                pool.pids.append(pid)
                reader = asyncio.StreamReader(limit=1 << 30)
                reading, _ = await loop.connect_read_pipe(
                    lambda r=reader: asyncio.StreamReaderProtocol(r), os.fdopen(result_read, "rb")
                )
                transport, protocol = await loop.connect_write_pipe(
                    asyncio.streams.FlowControlMixin, os.fdopen(task_write, "wb")
                )
                writer = asyncio.StreamWriter(transport, protocol, None, loop)
                pool.workers.append(_Worker(pid, writer, reader, reading))
        except BaseException:
            pool.stop()
            raise
        return pool

    def stop(self) -> None:
        """Close the pipes; a worker still computing is killed. Every child is reaped."""
        for worker in self.workers:
            worker.tasks.close()
            worker.reading.close()
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids = []


def _frame(value: Any) -> bytes:
    """One message: length, kind, then orjson (rows as JSON stores them) or, for values orjson
    cannot write (e.g. a set a stage left on a row), pickle, so the parent sees what the stage
    returned and repairs it exactly as in-process."""
    try:
        kind, data = _JSON, orjson.dumps(value)
    except TypeError:
        kind, data = _PICKLE, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data), kind) + data


def _death_signal() -> Callable[[], None]:
    """In a child: have the kernel SIGKILL it when the parent dies (Linux), so a kill -9 of the
    run leaves no worker behind holding the folder's lock."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return lambda: None
    parent = os.getpid()

    def arm() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call
            os._exit(1)

    return arm


def _child(
    stage: JsonListTransformer,
    tasks_fd: int,
    results_fd: int,
    concurrency: int,
    die_with_parent: Callable[[], None],
) -> None:
    """A worker's whole life: compute chunks until the task pipe closes, then exit at once
    (``os._exit``: nothing of the parent, buffers or handlers, runs a second time here)."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        signal.set_wakeup_fd(-1)
        die_with_parent()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        tasks = os.fdopen(tasks_fd, "rb")
        results = os.fdopen(results_fd, "wb", buffering=0)
        stage.setup_worker()
        while True:
            header = tasks.read(_HEADER.size)
            if len(header) < _HEADER.size:
                break
            size, kind = _HEADER.unpack(header)
            payload = tasks.read(size)
            chunk = orjson.loads(payload) if kind == _JSON else pickle.loads(payload)
            try:
                reply = loop.run_until_complete(_compute(stage, chunk, concurrency))
            except BaseException as exc:  # a StageFatal: every other row would fail the same
                results.write(_fatal(exc))
                code = 1
                break
            results.write(_reply_frame(reply))
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


async def _compute(
    stage: JsonListTransformer, chunk: list[list[Any]], concurrency: int
) -> tuple[int, list[Any], list[Any]]:
    """The stage's own row loop over one chunk: (errors, tracebacks, [index, row] pairs)."""
    rows: list[Any] = []
    counter = RowCounter()
    stage._tracebacks.clear()
    pairs = ((index, row) for index, row in chunk)
    await stage.run_pairs(pairs, lambda i, row: rows.append((i, row)), counter, concurrency)
    return counter.errors, list(stage._tracebacks), rows


def _reply_frame(reply: tuple[int, list[Any], list[Any]]) -> bytes:
    """``_frame`` of a worker's reply; a row holding a value that cannot be pickled is sent
    with a stand-in for that value."""
    try:
        return _frame(reply)
    except Exception:
        errors, tracebacks, rows = reply
        return _frame((errors, tracebacks, [_sendable(pair) for pair in rows]))


def _sendable(pair: tuple[int, Row]) -> tuple[int, Row]:
    """The row with each value that cannot be pickled replaced by a stand-in the parent cannot
    serialize either: the engine then records that field as not JSON-serializable, as
    in-process."""
    index, row = pair
    fixed = {}
    for key, value in row.items():
        try:
            pickle.dumps(value)
            fixed[key] = value
        except Exception:
            fixed[key] = Unpicklable(type(value).__name__)
    return index, fixed


class Unpicklable:
    """Stands in for a row value a worker could not send (neither JSON nor pickle)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


def _fatal(exc: BaseException) -> bytes:
    """A fatal error as a message the parent raises (a RuntimeError naming it if it cannot be
    pickled)."""
    try:
        data = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
    except Exception:
        data = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
    return _HEADER.pack(len(data), _FATAL) + data
