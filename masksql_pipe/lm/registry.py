"""Models by name: the offline ones, those of a config file, and any OpenAI model id.

Resolution happens when a stage starts, so a typo in a model name or a missing key stops the
run before any row, with a message that says how to configure the model.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from masksql_pipe.engine.environment import MODELS_ENV, environment, models_file
from masksql_pipe.errors import ConfigError
from masksql_pipe.lm.base import InferModel, Model
from masksql_pipe.lm.endpoint_defaults import OFFICIAL_BASE_URL
from masksql_pipe.lm.limits import CallLimits
from masksql_pipe.lm.offline import offline_models
from masksql_pipe.lm.request_fields import default_concurrency, effective_sampling

if TYPE_CHECKING:
    from masksql_pipe.lm.model_entries import ModelEntry
    from masksql_pipe.lm.openai_model import ClientPool

CONFIG_ENV = MODELS_ENV

NO_KEY_PLACEHOLDER = "no-key"
"""Sent as the key to an endpoint configured without one (the client requires some key)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


class ModelRegistry:
    """Resolves model names to shared `Model` instances (one per name, so limits are shared).

    `entries` are the models file's entries by name (`model_entries.ModelEntry`, used as they
    are); a name not among them is an OpenAI model id on the default endpoint.
    """

    def __init__(
        self,
        entries: Mapping[str, ModelEntry] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        config_file: Path | None = None,
        transport: str = "aiohttp",
        require_keys: bool = True,
    ) -> None:
        self._entries = dict(entries or {})
        self._env = dict(env if env is not None else os.environ)
        self.require_keys = require_keys
        """False for inspection (status): a model without its key can be described, not called."""
        self.config_file = config_file
        self._offline = offline_models()
        self._models: dict[str, Model] = {}
        self._transport = transport
        self._pool: ClientPool | None = None
        """Made with the first remote model: importing the HTTP client costs about a second."""

    @classmethod
    def from_environment(
        cls,
        config_file: Path | None = None,
        env_file: Path | None = None,
        require_keys: bool = True,
    ) -> ModelRegistry:
        """Build from the environment, a `.env` file (never overriding real variables) and the
        model config file (`config_file`, else $MASKSQL_PIPE_MODELS, else ./models.yaml), found
        as `masksql_pipe.engine.environment` finds them for every caller."""
        env = environment(env_file)
        config_file = models_file(config_file, env)
        entries = load_config(Path(config_file)) if config_file is not None else {}
        return cls(
            entries,
            env,
            config_file=Path(config_file) if config_file else None,
            require_keys=require_keys,
        )

    def names(self) -> list[str]:
        """Built-in offline model names, then the configured ones."""
        return [*self._offline, *sorted(self._entries)]

    def describe(self, name: str) -> dict[str, Any]:
        """What `get(name).settings()` will be, without needing a key (for fingerprints)."""
        if name in self._offline:
            return self._offline[name].settings()
        entry = self._entry(name)
        described = {
            "model": entry.model or name,
            "base_url": self._base_url(entry),
            **effective_sampling(entry.settings),
        }
        if entry.base_urls:
            del described["base_url"]  # any replica answers as the model (see lm.endpoints)
        if entry.structured is not None:
            described["structured"] = entry.structured
        return described

    def get(self, name: str | Model) -> Model:
        """The model for `name` (the same instance every time); ConfigError if it cannot run."""
        if isinstance(name, Model):
            return name
        model = self._models.get(name)
        if model is not None:
            return model
        if name in self._offline:
            model = self._offline[name]
        else:
            entry = self._entry(name)
            key_env = entry.key_variable()
            # an endpoint configured without a key gets the placeholder
            api_key = NO_KEY_PLACEHOLDER if key_env is None else self._env.get(key_env, "").strip()
            unusable = None
            if not api_key:
                unusable = ConfigError(self._missing_key(name, entry))
                if self.require_keys:
                    raise unusable
            from masksql_pipe.lm.openai_model import ClientPool, OpenAIModel

            if self._pool is None:
                self._pool = ClientPool(transport=self._transport)
            model = OpenAIModel(
                name,
                model=entry.model or name,
                base_url=self._base_url(entry),
                api_key=api_key,
                api_key_env=key_env or "",
                sampling=dict(entry.settings),
                limits=CallLimits(
                    entry.max_concurrency or default_concurrency(self._base_url(entry)),
                    entry.rpm,
                    entry.tpm,
                ),
                timeout=entry.timeout,
                max_retries=entry.max_retries,
                structured=entry.structured,
                pool=self._pool,
                direct=entry.client == "direct",
                unusable=unusable,
            )
            if entry.base_urls:
                from masksql_pipe.lm.endpoints import replica_set

                model = replica_set(
                    model,
                    entry.base_urls,
                    CallLimits(entry.max_concurrency, entry.rpm, entry.tpm),
                    default_concurrency,
                )
            model.price = entry.price  # type: ignore[attr-defined]
            model.batch = entry.batch  # type: ignore[attr-defined]
        self._models[name] = model
        return model

    def model(self, name: str | Model) -> InferModel:
        """GoTaglio's ``registry.model(name)``: `get(name)` with GoTaglio's interface
        (``await model.infer(messages, context)``; ``model.metadata()``)."""
        return InferModel(self.get(name))

    async def aclose(self) -> None:
        """Close every shared HTTP client."""
        if self._pool is not None:
            await self._pool.aclose()

    # -- helpers ------------------------------------------------------------------------------

    def _entry(self, name: str) -> ModelEntry:
        """The configured entry for `name`, else the one a bare OpenAI model id implies."""
        if name in self._entries:
            return self._entries[name]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"model name {name!r} is not valid; use one of {', '.join(self.names())}, "
                f"an OpenAI model id, or a name from the model config file ({self._config_hint()})"
            )
        from masksql_pipe.lm.model_entries import ModelEntry

        return ModelEntry.model_construct(model=name)

    def _base_url(self, entry: ModelEntry) -> str:
        return (entry.base_url or self._env.get("OPENAI_BASE_URL") or OFFICIAL_BASE_URL).rstrip("/")

    def _config_hint(self) -> str:
        return str(self.config_file) if self.config_file else f"set ${CONFIG_ENV} or --models"

    def _missing_key(self, name: str, entry: ModelEntry) -> str:
        if name in self._entries:
            source = self.config_file or "the entries given to the registry"
            return (
                f"model {name!r} ({source}): its key variable ${entry.key_variable()} is "
                "not set; set it in the environment or in .env (or drop 'api_key_env' from the "
                "entry if the endpoint needs no key)"
            )
        others = [other for other in self.names() if other != name]
        close = difflib.get_close_matches(name, others, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"model {name!r}{hint}: no API key; set ${entry.key_variable()} in the environment "
            f"or in .env (model: OpenAI model id {name!r} on {self._base_url(entry)}; "
            f"offline models: {', '.join(self._offline)}; "
            f"other endpoints: model config file, {self._config_hint()})"
        )


def load_config(path: Path) -> dict[str, ModelEntry]:
    """Read a model config file (YAML or JSON): ``models: {name: {model, base_url, ...}}``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the model config ({exc.strerror})") from None
    try:
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(_syntax_error(path, exc)) from None
    if data is None:
        return {}
    if isinstance(data, dict) and "models" in data:
        data = data["models"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of model names to settings")
    from masksql_pipe.lm.model_entries import validate_entry

    return {str(name): validate_entry(path, str(name), entry) for name, entry in data.items()}


def _syntax_error(path: Path, exc: Exception) -> str:
    """One line for a models file that does not parse: where (line and column, as YAML's
    parser marks it) and what."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.YAMLError) and mark is not None:
        problem = getattr(exc, "problem", None) or "syntax error"
        context = getattr(exc, "context", None)
        what = f"{problem} ({context})" if context else problem
        return f"{path}: line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {what}"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {first}"
