"""PromptProcessor: a stage that turns each row into a prompt, asks a model, and stores the answer.

A subclass says how (`_get_prompt`, `_process_output`, optionally `_oracle`); the framework owns
model resolution, the response cache, the prompt log, usage totals on every row
(`total_toks`, `total_latency`) and the stage's usage figures.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import IO, Any

import jinja2
import orjson

from masksql_pipe.errors import ConfigError
from masksql_pipe.lm.base import Completion, Messages, Model
from masksql_pipe.lm.cache import ResponseCache, cache_key
from masksql_pipe.lm.registry import ModelRegistry
from masksql_pipe.transformer import (
    ERROR_KEY,
    JsonListTransformer,
    RunOptions,
    StageRun,
    current_row_index,
)

TOKENS_KEY = "total_toks"
LATENCY_KEY = "total_latency"


class PromptProcessor(JsonListTransformer):
    """Row -> prompt -> model -> parsed value at `row[prop_name]`, with usage added to the row.

    `model` is a registry name ("oracle", "echo", "flakey", a configured name, an OpenAI id) or a
    Model. `template` is a jinja2 file rendered by `self.render(**vars)` (StrictUndefined).
    """

    def __init__(
        self,
        prop_name: str,
        model: str | Model = "oracle",
        template: str | Path | None = None,
    ) -> None:
        self.prop_name = prop_name
        self.model = model
        self.template = Path(template) if template is not None else None
        self._compiled: jinja2.Template | None = None
        self._registry: ModelRegistry | None = None
        self._fingerprint_registry: ModelRegistry | None = None
        self._owns_registry = False
        self._model: Model | None = None
        self._cache: ResponseCache | None = None
        self._lookup = True
        self._log: IO[bytes] | None = None
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

    # -- templates ---------------------------------------------------------------------------

    def render(self, **variables: Any) -> str:
        """Render the stage's template; a variable it uses but is not given is an error."""
        template = self._compiled or self._compile()
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
        if options.registry is not None:
            self._fingerprint_registry = options.registry

    def fingerprint_extra(self) -> dict[str, Any]:
        """The model's settings and the template text: editing either makes the stage stale."""
        if isinstance(self.model, Model):
            settings = self.model.settings()
        else:
            if self._fingerprint_registry is None:
                self._fingerprint_registry = ModelRegistry.from_environment()
            settings = self._fingerprint_registry.describe(self.model)
        return {"model": settings, "template": self._template_text()}

    async def setup(self, run: StageRun) -> None:
        """Resolve the model, compile the template, try the first prompt, open cache and log."""
        self._reset_usage()
        registry = run.options.registry
        if registry is None:
            registry = ModelRegistry.from_environment()
            self._owns_registry = True
        self._registry = registry
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
        log_path = run.book_dir / "prompts" / f"{run.stage_key}.jsonl"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in teardown

    def _try_first_prompt(self, rows: list[dict[str, Any]]) -> None:
        """Render the first row's prompt so a template error stops the stage before any call."""
        for index, row in enumerate(rows):
            if isinstance(row, dict) and ERROR_KEY not in row:
                try:
                    self._get_prompt(row)
                except ConfigError as exc:
                    raise ConfigError(f"{exc} [first row, index {index}]") from None
                except jinja2.TemplateError as exc:
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

    # -- one row --------------------------------------------------------------------------------

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Prompt, call (or cache), parse; add usage to the row's totals."""
        messages = _as_messages(self._get_prompt(row))
        oracle = None
        if self._use_oracle:
            oracle = self._oracle(row)
            if not isinstance(oracle, str):
                oracle = orjson.dumps(oracle).decode()
        completion = await self._call(messages, oracle)
        value = self._process_output(row, completion.text)
        old = row.get(self.prop_name)
        if isinstance(old, dict) and isinstance(value, dict):
            value = {**old, **value}
        row[self.prop_name] = value
        row[TOKENS_KEY] = _number(row.get(TOKENS_KEY), int) + completion.total_tokens
        row[LATENCY_KEY] = _number(row.get(LATENCY_KEY), float) + completion.latency
        return row

    async def _call(self, messages: Messages, oracle: str | None) -> Completion:
        model = self._model
        if model is None:
            raise ConfigError(f"stage {self.name}: setup() has not run")
        start = time.perf_counter()
        try:
            if self._cache is None:
                completion = await model.complete(messages, oracle=oracle)
            else:
                key = cache_key(model.settings(), messages)
                completion = await self._cache.fetch(
                    key, lambda: model.complete(messages, oracle=oracle), lookup=self._lookup
                )
        except Exception as exc:
            self._failures += 1
            self._write_log(messages, None, None, time.perf_counter() - start, error=exc)
            raise
        if completion.cached:
            self._cache_hits += 1
        else:
            self._calls += 1
            self._prompt_tokens += completion.prompt_tokens
            self._completion_tokens += completion.completion_tokens
            self._retries += completion.retries
            self._latencies.append(completion.latency)
        self._write_log(messages, completion.text, completion, completion.latency)
        return completion

    def _write_log(
        self,
        messages: Messages,
        reply: str | None,
        completion: Completion | None,
        latency: float,
        error: BaseException | None = None,
    ) -> None:
        if self._log is None:
            return
        entry: dict[str, Any] = {
            "row": current_row_index(),
            "model": self._model.name if self._model else None,
            "messages": messages,
            "reply": reply,
            "prompt_tokens": completion.prompt_tokens if completion else None,
            "completion_tokens": completion.completion_tokens if completion else None,
            "latency": round(latency, 6),
            "cached": completion.cached if completion else False,
            "retries": completion.retries if completion else None,
        }
        if error is not None:
            entry["error"] = f"{type(error).__name__}: {error}"
        self._log.write(orjson.dumps(entry) + b"\n")
        self._log.flush()

    # -- usage figures ---------------------------------------------------------------------------

    def _reset_usage(self) -> None:
        self._calls = 0
        self._cache_hits = 0
        self._failures = 0
        self._retries = 0
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._latencies: list[float] = []
        self._use_oracle = False

    def usage(self) -> dict[str, Any]:
        """Model usage of this stage's last run: tokens spent, calls, cache hits, latencies."""
        lat = sorted(self._latencies)
        return {
            "model": self._model.name if self._model else str(self.model),
            "calls": self._calls,
            "cache_hits": self._cache_hits,
            "failed_calls": self._failures,
            "retries": self._retries,
            "prompt_tokens": self._prompt_tokens,
            "completion_tokens": self._completion_tokens,
            "latency_p50": percentile(lat, 50),
            "latency_p95": percentile(lat, 95),
            "latency_max": round(lat[-1], 4) if lat else None,
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
