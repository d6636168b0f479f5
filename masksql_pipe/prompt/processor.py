"""PromptProcessor: a stage that turns each row into a prompt, asks a model, and stores the answer.

A subclass says how (`_get_prompt`, `_process_output`, optionally `_oracle` and the answer's
JSON schema); the framework owns model resolution, the reply budget, parse retries, the response
cache (accepted answers only), the prompt log, usage totals on every row (`total_toks`,
`total_latency`, failed attempts included) and the stage's usage figures.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from masksql_pipe.engine.scrub import scrub_text
from masksql_pipe.engine.stage import (
    ERROR_KEY,
    JsonListTransformer,
    RunOptions,
    StageRun,
    current_row_index,
)
from masksql_pipe.errors import ConfigError, ModelError, StageFatal
from masksql_pipe.lm.base import Completion, Messages, Model
from masksql_pipe.lm.cache import ResponseCache, cache_key
from masksql_pipe.lm.registry import ModelRegistry
from masksql_pipe.prompt.log import PROMPT_LOG_STAT, LogTally, prompt_log_path
from masksql_pipe.prompt.spend import StageSpend

if TYPE_CHECKING:
    import jinja2

TOKENS_KEY = "total_toks"
LATENCY_KEY = "total_latency"
DEFAULT_MAX_TOKENS = 512
"""Reply budget a stage asks for unless it or the model's settings say otherwise."""
DEFAULT_PARSE_RETRIES = 2
"""Follow-up attempts after a reply that could not be used (cut off, or refused by the parser)."""
DEFAULT_MAX_REPLY_BYTES = 1_000_000
"""Largest reply (UTF-8 bytes) a stage takes; a longer one is a failed call, never kept."""


class ReplyCutOff(ModelError):
    """The reply stopped at the token limit (`finish_reason: "length"`): a failed call."""


class ReplyTooLarge(ModelError):
    """The reply is over `max_reply_bytes`: a failed call, neither kept, cached nor echoed back
    in a retry prompt. `prompt_tokens` and `completion_tokens` are what it cost."""

    def __init__(self, size: int, limit: int, completion: Completion) -> None:
        super().__init__(f"reply of {size} bytes is over the limit (max_reply_bytes {limit})")
        spent = not completion.cached
        self.prompt_tokens = completion.prompt_tokens if spent else 0
        self.completion_tokens = completion.completion_tokens if spent else 0


class PromptProcessor(JsonListTransformer):
    """Row -> prompt -> model -> parsed value at `row[prop_name]`, with usage added to the row.

    `model` is a registry name ("oracle", "echo", "flakey", a configured name, an OpenAI id) or a
    Model. `template` is a jinja2 file rendered by `self.render(**vars)` (StrictUndefined).
    `max_tokens` and `parse_retries` override the class defaults; a model's own `max_tokens`
    setting overrides the stage's.
    """

    max_tokens: int | None = DEFAULT_MAX_TOKENS
    """Reply budget sent with each call (None: the endpoint's own limit)."""
    parse_retries: int = DEFAULT_PARSE_RETRIES
    """Follow-up attempts after a reply that was cut off or that `_process_output` refused."""
    answer_schema: dict[str, Any] | None = None
    """JSON schema of the answer, sent to models configured with `structured` (None: none)."""
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    """Largest reply taken (UTF-8 bytes); a longer one is a failed call."""

    def __init__(
        self,
        prop_name: str,
        model: str | Model = "oracle",
        template: str | Path | None = None,
        *,
        max_tokens: int | None = None,
        parse_retries: int | None = None,
        max_reply_bytes: int | None = None,
    ) -> None:
        self.prop_name = prop_name
        if max_reply_bytes is not None:
            if isinstance(max_reply_bytes, bool) or not isinstance(max_reply_bytes, int):
                raise ConfigError(f"stage {self.name}: max_reply_bytes must be an integer")
            if max_reply_bytes < 1:
                raise ConfigError(f"stage {self.name}: max_reply_bytes must be at least 1")
            self.max_reply_bytes = max_reply_bytes
        self.model = model
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
                raise ConfigError(f"stage {self.name}: max_tokens must be a positive integer")
            self.max_tokens = max_tokens
        if parse_retries is not None:
            if isinstance(parse_retries, bool) or not isinstance(parse_retries, int):
                raise ConfigError(f"stage {self.name}: parse_retries must be an integer")
            if parse_retries < 0:
                raise ConfigError(f"stage {self.name}: parse_retries must be at least 0")
            self.parse_retries = parse_retries
        self.template = Path(template) if template is not None else None
        self._compiled: jinja2.Template | None = None
        self._registry: ModelRegistry | None = None
        self._fingerprint_registry: ModelRegistry | None = None
        self._owns_registry = False
        self._options: RunOptions | None = None
        self._model: Model | None = None
        self._cache: ResponseCache | None = None
        self._lookup = True
        self._log: IO[bytes] | None = None
        self._run_id: str | None = None
        self._reset_usage()

    # -- the hooks a stage implements --------------------------------------------------------

    def _get_prompt(self, row: dict[str, Any]) -> str | Messages:
        """The prompt for `row`: one user message (str) or chat messages; default renders the
        template with the row's fields (and the row itself as `row`)."""
        if self.template is None:
            raise NotImplementedError(
                f"{type(self).__name__} must define _get_prompt or a template"
            )
        return self.render(**{**row, "row": row})

    def _process_output(self, row: dict[str, Any], output: str) -> Any:
        """The value stored at `row[prop_name]`; default: the reply text, stripped."""
        return output.strip()

    def _oracle(self, row: dict[str, Any]) -> str:
        """The text a perfect model would answer for `row` (used by oracle/perfect/flakey)."""
        raise NotImplementedError

    def _answer_schema(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """JSON schema of the answer for `row` (default: the class's `answer_schema`)."""
        return self.answer_schema

    def _retry_message(self, error: BaseException, completion: Completion) -> str:
        """The follow-up user message after a reply that could not be used."""
        if isinstance(error, ReplyCutOff):
            return (
                f"Your reply was cut off after {completion.completion_tokens} tokens. "
                "Answer again, much shorter: give only the answer in the requested format."
            )
        return (
            f"Your reply could not be used: {error}. "
            "Answer again, following the requested format exactly."
        )

    # -- templates ---------------------------------------------------------------------------

    def render(self, **variables: Any) -> str:
        """Render the stage's template; a variable it uses but is not given is an error."""
        template = self._compiled or self._compile()
        import jinja2  # loaded with the first template, so template-less stages never pay it

        try:
            return template.render(**variables)
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"template {self.template}: {exc} (passed: {_names(variables)})"
            ) from None

    def _compile(self) -> jinja2.Template:
        if self.template is None:
            raise ConfigError(f"stage {self.name}: render() needs a template file")
        path = self.template
        if not path.is_file():
            raise ConfigError(f"template {path}: file not found (stage {self.name})")
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(path.parent)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        try:
            self._compiled = env.get_template(path.name)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template {path}:{exc.lineno}: {exc.message}") from None
        return self._compiled

    def _template_text(self) -> str | None:
        if self.template is None:
            return None
        try:
            return self.template.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"template {self.template}: cannot read ({exc.strerror})") from None

    # -- engine hooks --------------------------------------------------------------------------

    def use_options(self, options: RunOptions) -> None:
        """Take the run's model registry for the fingerprint too (call before fingerprint())."""
        self._options = options
        if options.registry is not None:
            self._fingerprint_registry = options.registry

    def needs_whole_list(self) -> bool:
        """Only a budget or a batch API needs the prompts still to send before the first call
        (to price them or to batch them); otherwise rows stream through the stage."""
        options = self._options
        model = self.model
        if not isinstance(model, Model):
            model = self._describing_registry().get(model)
        if model.offline:
            return False
        batch = getattr(model, "batch", None) is not None
        return options is None or options.budget is not None or options.batch or batch

    def _describing_registry(self) -> ModelRegistry:
        """The run's registry, else one from the environment: what the engine asks before
        the stage is set up (its fingerprint, whether it streams) is answered from it."""
        if self._fingerprint_registry is None:
            self._fingerprint_registry = ModelRegistry.from_environment()
        return self._fingerprint_registry

    def fingerprint_extra(self) -> dict[str, Any]:
        """The model's settings, the template text and the stage's request defaults (reply
        budget, parse retries, answer schema): editing any makes the stage stale."""
        if isinstance(self.model, Model):
            settings = self.model.settings()
        else:
            settings = self._describing_registry().describe(self.model)
        request = {
            "max_tokens": self.max_tokens,
            "parse_retries": self.parse_retries,
            "answer_schema": self.answer_schema,
        }
        if self.max_reply_bytes != DEFAULT_MAX_REPLY_BYTES:  # older fingerprints stay valid
            request["max_reply_bytes"] = self.max_reply_bytes
        return {"model": settings, "template": self._template_text(), "request": request}

    async def setup(self, run: StageRun) -> None:
        """Resolve the model, compile the template, try the first prompt, open cache and log."""
        self._reset_usage()
        registry = run.options.registry
        if registry is None:
            registry = ModelRegistry.from_environment()
            self._owns_registry = True
        self._registry = registry
        self._run_id = run.options.run_id
        model = registry.get(self.model)
        self._model = model
        has_oracle = type(self)._oracle is not PromptProcessor._oracle
        if model.needs_oracle and not has_oracle:
            raise ConfigError(
                f"stage {self.name}: model {model.name!r} answers from an oracle, but "
                f"{type(self).__name__} defines no _oracle(row); pick another model"
            )
        self._use_oracle = model.uses_oracle and has_oracle
        if self.template is not None:
            self._compile()
            self._try_first_prompt(run.rows)
        if not model.offline:
            self._cache = ResponseCache(run.book_dir / "cache.sqlite")
            self._lookup = not run.options.no_cache
        log_path = prompt_log_path(run.book_dir, run.stage_key)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # what earlier runs logged counts too: the audit reads the latest call of every row
        self._tally = LogTally.of_file(log_path) if log_path.exists() else LogTally()
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in teardown
        self._spend = StageSpend(
            model,
            run.options,
            record=run.book_dir / "batches" / f"{run.stage_key}.json",
            label=run.stage_key,
            output_bound=self._budget(),
        )

    async def process_rows(self, rows: list[dict[str, Any]], indices: Any, *args: Any) -> None:
        """With a budget or in batch mode, first settle the prompts the cache cannot answer
        (estimate their cost; send them as batches), then run the rows."""
        spend = self._spend
        if spend is not None and spend.needs_prompts:
            indices = list(indices)
            await spend.prepare(self._pending_prompts(rows, indices), args[1])
        await super().process_rows(rows, indices, *args)

    def _pending_prompts(
        self, rows: list[dict[str, Any]], indices: list[int]
    ) -> dict[str, tuple[Messages, dict[str, Any]]]:
        """Cache key -> (messages, request body) of the rows' first prompts the cache lacks
        (rows whose prompt cannot be made are left to fail on their own)."""
        model = self._model
        if model is None:
            return {}
        sender = getattr(model, "endpoints", None)
        sender = sender[0].model if sender else model
        pending: dict[str, tuple[Messages, dict[str, Any]]] = {}
        for index in indices:
            row = rows[index]
            if ERROR_KEY in row:
                continue
            try:
                messages = _as_messages(self._get_prompt(row))
                schema = self._answer_schema(row)
            except Exception:
                continue
            settings = model.call_settings(max_tokens=self.max_tokens, schema=schema)
            key = cache_key(settings, messages)
            if key in pending or (
                self._lookup and self._cache is not None and self._cache.get(key) is not None
            ):
                continue
            body = {"model": getattr(model, "model", model.name), "messages": messages}
            if hasattr(sender, "request_body"):
                body = sender.request_body(messages, max_tokens=self.max_tokens, schema=schema)
            pending[key] = (messages, body)
        return pending

    def _try_first_prompt(self, rows: list[dict[str, Any]]) -> None:
        """Render the first row's prompt so a template error stops the stage before any call."""
        for index, row in enumerate(rows):
            if isinstance(row, dict) and ERROR_KEY not in row:
                try:
                    self._get_prompt(row)
                except ConfigError as exc:
                    raise ConfigError(f"{exc} [first row, index {index}]") from None
                except _template_errors() as exc:
                    raise ConfigError(f"template {self.template}: {exc} [row {index}]") from None
                except Exception:
                    pass  # a data problem of that row: it becomes that row's error
                return

    async def teardown(self) -> None:
        """Close the log and the cache, and record the usage figures in `stats`."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if self._owns_registry and self._registry is not None:
            await self._registry.aclose()
        self._registry = None
        self._owns_registry = False
        self.stats.update(self.usage())
        if self._tally is not None:
            self.stats[PROMPT_LOG_STAT] = self._tally.to_dict()
            self._tally = None

    # -- one row --------------------------------------------------------------------------------

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Prompt, call (or cache), parse; add every attempt's usage to the row's totals."""
        messages = _as_messages(self._get_prompt(row))
        oracle = None
        if self._use_oracle:
            oracle = self._oracle(row)
            if not isinstance(oracle, str):
                oracle = orjson.dumps(oracle).decode()
        value = await self._ask(row, messages, oracle, self._answer_schema(row))
        old = row.get(self.prop_name)
        if isinstance(old, dict) and isinstance(value, dict):
            value = {**old, **value}
        row[self.prop_name] = value
        return row

    async def _ask(
        self,
        row: dict[str, Any],
        messages: Messages,
        oracle: str | None,
        schema: dict[str, Any] | None,
    ) -> Any:
        """Call until a reply is accepted or the parse retries are spent.

        A reply cut off at the token limit or refused by `_process_output` is a failed call: it
        is logged with the reason, never stored in the cache, and the model is asked again with
        the reply and the reason appended. Every attempt's tokens and latency go on the row, so
        a row that fails still shows what it cost. An answer from the cache that the stage now
        refuses is dropped from the cache and asked for afresh.
        """
        attempt = 0
        lookup = self._lookup
        while True:
            completion, key = await self._call(messages, oracle, schema, lookup=lookup)
            try:
                if completion.finish_reason == "length":
                    raise ReplyCutOff(
                        f"reply cut off at the token limit ({completion.completion_tokens} "
                        f"tokens; max_tokens {self._budget()})"
                    )
                value = self._process_output(row, completion.text)
            except Exception as exc:
                if isinstance(exc, ConfigError | StageFatal):
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                cache = self._cache
                if (
                    completion.cached
                    and key is not None
                    and cache is not None
                    and cache.discard(key)
                ):
                    # an answer stored earlier that this stage now refuses: ask afresh
                    self._write_log(messages, completion, attempt, rejected=reason)
                    lookup = False
                    continue
                self._add_usage(row, completion)
                self._rejected += 1
                self._cut_off += isinstance(exc, ReplyCutOff)
                self._write_log(messages, completion, attempt, rejected=reason)
                if attempt >= self.parse_retries:
                    raise
                messages = [
                    *messages,
                    {"role": "assistant", "content": completion.text},
                    {"role": "user", "content": self._retry_message(exc, completion)},
                ]
                attempt += 1
                self._parse_retries += 1
                continue
            self._add_usage(row, completion)
            self._write_log(messages, completion, attempt)
            if key is not None and self._cache is not None and not completion.cached:
                self._cache.put(key, completion)
            return value

    def _budget(self) -> Any:
        """The reply budget actually sent (the model's own setting wins over the stage's)."""
        model = self._model
        if model is None:
            return self.max_tokens
        sent = model.call_settings(max_tokens=self.max_tokens)
        return sent.get("max_tokens") or sent.get("max_completion_tokens") or self.max_tokens

    def _add_usage(self, row: dict[str, Any], completion: Completion) -> None:
        if self._spend is not None:
            self._spend.add_to_row(row, completion)
        row[TOKENS_KEY] = _number(row.get(TOKENS_KEY), int) + completion.total_tokens
        row[LATENCY_KEY] = _number(row.get(LATENCY_KEY), float) + completion.latency

    async def _call(
        self,
        messages: Messages,
        oracle: str | None,
        schema: dict[str, Any] | None = None,
        *,
        lookup: bool = True,
    ) -> tuple[Completion, str | None]:
        """One call (or cached answer) and its cache key; the stage figures count it."""
        model = self._model
        if model is None:
            raise ConfigError(f"stage {self.name}: setup() has not run")
        budget = self.max_tokens

        def ask() -> Any:
            return model.complete(messages, oracle=oracle, max_tokens=budget, schema=schema)

        start = time.perf_counter()
        key = None
        try:
            if self._cache is None:
                completion = await ask()
            else:
                key = cache_key(model.call_settings(max_tokens=budget, schema=schema), messages)
                if self._spend is not None:
                    ask = self._spend.guard(key, messages, ask)
                completion = await self._cache.fetch(key, ask, lookup=lookup, store=False)
            completion = self._checked(completion, key)
        except Exception as exc:
            self._failures += 1
            self._prompt_tokens += _spent(exc, "prompt_tokens")
            self._completion_tokens += _spent(exc, "completion_tokens")
            self._write_error(messages, time.perf_counter() - start, exc)
            raise
        if completion.cached:
            self._cache_hits += 1
        else:
            self._calls += 1
            self._prompt_tokens += completion.prompt_tokens
            self._completion_tokens += completion.completion_tokens
            self._retries += completion.retries
            self._latencies.append(completion.latency)
            self._queue_seconds += completion.wait
        return completion, key

    def _checked(self, completion: Completion, key: str | None) -> Completion:
        """The reply with any secret scrubbed (before it reaches a file, the cache or a retry
        prompt); ReplyTooLarge, and a cached copy dropped, when it is over the size limit."""
        size = len(completion.text.encode("utf-8", "surrogatepass"))
        if size > self.max_reply_bytes:
            if completion.cached and key is not None and self._cache is not None:
                self._cache.discard(key)
            raise ReplyTooLarge(size, self.max_reply_bytes, completion)
        return completion.scrubbed()

    def _write_log(
        self,
        messages: Messages,
        completion: Completion,
        attempt: int,
        rejected: str | None = None,
    ) -> None:
        """One prompt-log line per call: what was sent, the reply, its cost, and why it was
        refused (`rejected`), if it was."""
        if self._log is None:
            return
        entry: dict[str, Any] = {
            "row": current_row_index(),
            "model": self._model.name if self._model else None,
            "messages": messages,
            "reply": completion.text,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency": round(completion.latency, 6),
            "wait": round(completion.wait, 6),
            "cached": completion.cached,
            "retries": completion.retries,
            "finish_reason": completion.finish_reason,
            "attempt": attempt,
        }
        if completion.batch:  # a batch API times no single request: latency 0 is not measured
            entry["batch"] = True
        if self._run_id is not None:
            entry["run"] = self._run_id
        if rejected is not None:
            entry["rejected"] = rejected
        self._log.write(orjson.dumps(entry) + b"\n")
        if self._tally is not None:
            self._tally.add(entry["row"])
        self._flush_log_soon()

    def _flush_log_soon(self) -> None:
        """Hand the log lines to the OS when the event loop next gets control: lines written in
        the same loop turn share one write (a flush per line cost a syscall per call)."""
        if self._log_flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush_log()
            return
        self._log_flush_scheduled = True
        loop.call_soon(self._flush_log)

    def _flush_log(self) -> None:
        self._log_flush_scheduled = False
        if self._log is not None:
            self._log.flush()

    def _write_error(self, messages: Messages, elapsed: float, error: BaseException) -> None:
        """The prompt-log line of a call that got no reply at all."""
        if self._log is None:
            return
        entry: dict[str, Any] = {
            "row": current_row_index(),
            "model": self._model.name if self._model else None,
            "messages": messages,
            "reply": None,
            "prompt_tokens": None,
            "completion_tokens": None,
            "latency": round(elapsed, 6),
            "cached": False,
            "retries": None,
            "error": scrub_text(f"{type(error).__name__}: {error}"),
        }
        if self._run_id is not None:
            entry["run"] = self._run_id
        self._log.write(orjson.dumps(entry) + b"\n")
        if self._tally is not None:
            self._tally.add(entry["row"])
        self._flush_log_soon()

    # -- usage figures ---------------------------------------------------------------------------

    def _reset_usage(self) -> None:
        self._calls = 0
        self._cache_hits = 0
        self._failures = 0
        self._retries = 0
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._rejected = 0
        self._cut_off = 0
        self._parse_retries = 0
        self._queue_seconds = 0.0
        self._latencies: list[float] = []
        self._use_oracle = False
        self._spend: StageSpend | None = None
        self._log_flush_scheduled = False
        self._tally: LogTally | None = None

    def usage(self) -> dict[str, Any]:
        """Model usage of this stage's last run: tokens spent, calls, cache hits, latencies
        (service time), replies refused (cut off or unparsable), follow-up attempts, and the
        seconds calls waited for a concurrency slot or a rate limit (`queue_seconds`)."""
        lat = sorted(self._latencies)
        return {
            "model": self._model.name if self._model else str(self.model),
            "calls": self._calls,
            "cache_hits": self._cache_hits,
            "failed_calls": self._failures,
            "retries": self._retries,
            "rejected_replies": self._rejected,
            "cut_off_replies": self._cut_off,
            "parse_retries": self._parse_retries,
            "queue_seconds": round(self._queue_seconds, 4),
            "prompt_tokens": self._prompt_tokens,
            "completion_tokens": self._completion_tokens,
            "latency_p50": percentile(lat, 50),
            "latency_p95": percentile(lat, 95),
            "latency_max": round(lat[-1], 4) if lat else None,
            **(self._spend.figures() if self._spend is not None else {}),
        }


def _as_messages(prompt: Any) -> Messages:
    """A prompt as chat messages: a str is one user message; a list must hold role/content."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and prompt:
        for i, message in enumerate(prompt):
            if not (
                isinstance(message, dict)
                and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)
            ):
                raise TypeError(
                    f"_get_prompt returned a list whose item {i} is not a "
                    "{'role': str, 'content': str} message"
                )
        return prompt
    raise TypeError(f"_get_prompt must return a str or a list of messages, not {prompt!r:.60}")


def _spent(error: BaseException, name: str) -> int:
    """Tokens a failed call still cost (reported by the endpoint), 0 when it says none."""
    value = getattr(error, name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return kind(value)
    return kind(0)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted `values` (None when empty)."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return round(values[rank - 1], 4)


def _names(variables: dict[str, Any]) -> str:
    names = sorted(variables)
    shown = ", ".join(names[:12])
    return shown + (", ..." if len(names) > 12 else "") if names else "nothing"


def _template_errors() -> tuple[type[BaseException], ...]:
    """jinja2's error class if jinja2 is loaded: if it is not, no template error was raised."""
    jinja2 = sys.modules.get("jinja2")
    return (jinja2.TemplateError,) if jinja2 is not None else ()
