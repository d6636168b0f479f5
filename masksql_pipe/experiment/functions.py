"""Plain async functions ``f(context)`` as DAG nodes, run as numbered file stages.

A function sees ``{"case": row, "stages": results of earlier function nodes, "metadata": ...}``
and its return value is stored on the row under ``stages.<node name>``.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from masksql_pipe.engine.fingerprints import function_fingerprint
from masksql_pipe.engine.scrub import scrub_text
from masksql_pipe.engine.stage import JsonListTransformer, StageRun, current_row_index
from masksql_pipe.errors import SpecError
from masksql_pipe.experiment.reads import ReadRecorder, current_reads, values_of
from masksql_pipe.lm.base import current_caller
from masksql_pipe.prompt.log import prompt_log_path
from masksql_pipe.prompt.processor import percentile

StageFunction = Callable[[dict[str, Any]], Awaitable[Any]]

RESULTS_KEY = "stages"
SECONDS_KEY = "stage_seconds"


class FunctionStage(JsonListTransformer):
    """Runs one async function per row and records its return value under ``stages.<name>``."""

    def __init__(
        self, name: str, function: StageFunction, inputs: list[str], metadata: dict | None = None
    ) -> None:
        if not inspect.iscoroutinefunction(function):
            raise SpecError(f"DAG node {name!r}: function must be an async def f(context)")
        self.function = function
        self.inputs = inputs
        self.metadata = metadata or {}
        self.name = name

    def params(self) -> dict[str, Any]:
        """Name and inputs: the function and the configuration count in `fingerprint_extra`."""
        return {"name": self.name, "inputs": self.inputs}

    def fingerprint_extra(self) -> dict[str, Any]:
        """The function's own code, what it uses and captured (`function_fingerprint`), and the
        values of the configuration keys it read in its last run (not the whole configuration:
        a setting it never looked at does not make it stale), and any settings the pipeline
        declared for it beside the configuration."""
        config = self.metadata.get("config")
        reads = getattr(self, "_reads", set())
        declared = {k: v for k, v in self.metadata.items() if k != "config"}
        return {
            "function": function_fingerprint(self.function),
            "config": values_of(config, reads) if isinstance(config, dict) else {},
            **({"metadata": declared} if declared else {}),  # settings a pipeline declared
        }

    def remember(self, record: dict[str, Any]) -> None:
        """Take the keys the last run read from its record, to fingerprint their values."""
        parts = record.get("parts")
        extra = parts.get("extra") if isinstance(parts, dict) else None
        config = extra.get("config") if isinstance(extra, dict) else None
        if isinstance(config, dict):
            self._reads = set(config)

    async def setup(self, run: StageRun) -> None:
        from masksql_pipe.lm.cache import ResponseCache

        self._run_reads: set[str] = set()
        self._rows_called = 0
        self._rows_total = len(run.rows)
        self._latencies: list[float] = []
        self._price: Any = None
        self._cache = ResponseCache(run.book_dir / "cache.sqlite")
        self._lookup = not run.options.no_cache
        self._run_id = run.options.run_id
        self._log_path = prompt_log_path(run.book_dir, run.stage_key)
        self._log: Any = None  # opened with the first call: most function stages make none

    async def complete(self, model: Any, messages: Any, **kwargs: Any) -> Any:
        """``model.complete`` through the run's response cache (offline models answer directly).

        Functions call it as ``context["complete"](model, messages, oracle=...)``, so a rerun,
        ``--force`` or ``--from`` pays for no prompt twice.
        """
        cache = getattr(self, "_cache", None)
        self._price = getattr(model, "price", None)  # dollars for what the function returns
        if model.offline or cache is None:
            return (await model.complete(messages, **kwargs)).scrubbed()
        from masksql_pipe.lm.cache import cache_key

        budget = kwargs.get("max_tokens")
        key = cache_key(model.call_settings(max_tokens=budget), messages)

        async def ask() -> Any:
            return (await model.complete(messages, **kwargs)).scrubbed()

        found = await cache.fetch(key, ask, lookup=self._lookup)
        return found.scrubbed()  # also an answer cached before scrubbing

    async def _call(
        self, calls: list[tuple[Any, Any]], model: Any, messages: Any, **kwargs: Any
    ) -> Any:
        """`complete`, noted for the row's totals (``calls``) and written to the prompt log:
        ``context["complete"]`` and `InferModel.infer` both come here."""
        started = time.perf_counter()
        try:
            completion = await self.complete(model, messages, **kwargs)
        except Exception as exc:
            self._write_log(model, messages, None, time.perf_counter() - started, exc)
            raise
        calls.append((completion, getattr(model, "price", None)))
        self._write_log(model, messages, completion, completion.latency, None)
        return completion

    def _write_log(
        self, model: Any, messages: Any, completion: Any, latency: float, error: Any
    ) -> None:
        """One prompt-log line per call, as PromptProcessor writes them (row, run, usage)."""
        if getattr(self, "_log_path", None) is None:
            return  # called outside a run (no setup): nothing to log to
        if self._log is None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed in teardown
        entry: dict[str, Any] = {
            "row": current_row_index(),
            "model": getattr(model, "name", None),
            "messages": messages,
            "reply": None if completion is None else completion.text,
            "prompt_tokens": None if completion is None else completion.prompt_tokens,
            "completion_tokens": None if completion is None else completion.completion_tokens,
            "latency": round(latency, 6),
            "cached": bool(getattr(completion, "cached", False)),
            "retries": getattr(completion, "retries", None),
            "finish_reason": getattr(completion, "finish_reason", None),
        }
        if self._run_id is not None:
            entry["run"] = self._run_id
        if error is not None:
            entry["error"] = scrub_text(f"{type(error).__name__}: {error}")
        self._log.write(orjson.dumps(entry) + b"\n")
        self._log.flush()

    async def teardown(self) -> None:
        """Latency percentiles of the model calls the function made, for status and reports;
        the keys read become the stage's (with the last run's when only some rows ran)."""
        if getattr(self, "_rows_total", None) is not None:
            partial = self._rows_called < self._rows_total
            kept = getattr(self, "_reads", set()) if partial else set()
            self._reads = kept | self._run_reads
        cache = getattr(self, "_cache", None)
        if cache is not None:
            cache.close()
            self._cache = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        if self._latencies:
            values = sorted(self._latencies)
            self.stats["latency_p50"] = percentile(values, 50)
            self.stats["latency_p95"] = percentile(values, 95)
            self.stats["latency_max"] = round(values[-1], 4)

    def _count_call(self, completion: Any) -> None:
        """Usage of a model call whose Completion the function returned."""
        stats = self.stats
        if getattr(completion, "cached", False):
            stats["cache_hits"] = stats.get("cache_hits", 0) + 1
            return
        stats["calls"] = stats.get("calls", 0) + 1
        stats["prompt_tokens"] = stats.get("prompt_tokens", 0) + completion.prompt_tokens
        stats["completion_tokens"] = (
            stats.get("completion_tokens", 0) + completion.completion_tokens
        )
        self._latencies.append(completion.latency)

    def _account(self, row: dict[str, Any], completion: Any, price: Any) -> None:
        """Add one call's tokens, latency and cost to the row's totals and the stage figures."""
        row["total_toks"] = (
            int(row.get("total_toks", 0)) + completion.prompt_tokens + completion.completion_tokens
        )
        row["total_latency"] = float(row.get("total_latency", 0.0)) + completion.latency
        self._count_call(completion)
        self._add_cost(row, completion, price)

    def _add_cost(self, row: dict[str, Any], completion: Any, price: Any) -> None:
        """`total_cost` on the row and `cost` in the figures, when the model has a price (a
        cached answer costs nothing now)."""
        if price is None:
            return
        dollars = 0.0
        if not getattr(completion, "cached", False):
            dollars = price.cost(
                completion.prompt_tokens,
                completion.completion_tokens,
                getattr(completion, "cached_tokens", 0),
            )
        row["total_cost"] = round(float(row.get("total_cost") or 0.0) + dollars, 10)
        self.stats["cost"] = round(float(self.stats.get("cost", 0.0)) + dollars, 8)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        results = dict(row.get(RESULTS_KEY) or {})
        missing = [name for name in self.inputs if name not in results]
        if missing:
            raise KeyError(f"inputs {', '.join(missing)} have no result for this case")
        calls: list[tuple[Any, Any]] = []
        complete = functools.partial(self._call, calls)
        reads: set[str] = getattr(self, "_run_reads", set())
        metadata = {**self.metadata, "stage": self.name}
        if isinstance(metadata.get("config"), dict):
            metadata["config"] = ReadRecorder(metadata["config"], reads)
        context = {
            "case": {k: v for k, v in row.items() if k not in (RESULTS_KEY, SECONDS_KEY)},
            "stages": results,
            "metadata": metadata,
            "complete": complete,
        }
        started = time.perf_counter()
        token = current_caller.set(complete)  # for model.infer(messages) without a context
        reading = current_reads.set(reads)  # the pipeline's config() records into it too
        self._rows_called = getattr(self, "_rows_called", 0) + 1
        try:
            value = await self.function(context)
        finally:
            current_reads.reset(reading)
            current_caller.reset(token)
        elapsed = time.perf_counter() - started
        for completion, price in calls:
            self._account(row, completion, price)
        if _is_completion(value):
            if not any(value is completion for completion, _ in calls):  # made elsewhere
                self._account(row, value, getattr(self, "_price", None))
            value = value.text
        results[self.name] = value
        row[RESULTS_KEY] = results
        row[SECONDS_KEY] = {**(row.get(SECONDS_KEY) or {}), self.name: round(elapsed, 6)}
        return row


def _is_completion(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("text", "prompt_tokens", "completion_tokens", "latency"))


def function_stage(
    name: str, function: Any, inputs: list[str], metadata: dict[str, Any] | None = None
) -> JsonListTransformer:
    """Adapter for ``Pipeline(..., adapt=...)``: wraps async functions as stages.

    ``metadata`` (the run's configuration, from the CLI) is handed to each function; the
    values of the keys a function reads from it are part of that node's fingerprint.
    """
    if isinstance(function, JsonListTransformer):
        return function
    if not callable(function):
        raise SpecError(f"DAG node {name!r}: function is a {type(function).__name__}, not callable")
    return FunctionStage(name, function, inputs, metadata)
