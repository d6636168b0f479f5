"""Models by name: the offline ones, those of a config file, and any OpenAI model id.

Resolution happens when a stage starts, so a typo in a model name or a missing key stops the
run before any row, with a message that says how to configure the model.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from masksql_pipe.engine.environment import MODELS_ENV, environment, models_file
from masksql_pipe.errors import ConfigError
from masksql_pipe.lm.base import InferModel, Model
from masksql_pipe.lm.batch import BatchSettings
from masksql_pipe.lm.endpoint_defaults import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    OFFICIAL_BASE_URL,
)
from masksql_pipe.lm.limits import CallLimits
from masksql_pipe.lm.offline import offline_models
from masksql_pipe.lm.pricing import Price
from masksql_pipe.lm.replica_specs import EndpointSpec
from masksql_pipe.lm.request_fields import default_concurrency, effective_sampling

if TYPE_CHECKING:
    from masksql_pipe.lm.openai_model import ClientPool

CONFIG_ENV = MODELS_ENV

NO_KEY_PLACEHOLDER = "no-key"
"""Sent as the key to an endpoint configured without one (the client requires some key)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


@dataclass
class ModelSpec:
    """How to reach one configured model (from the config file, or implied by its name)."""

    name: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    """None: the endpoint takes no key (a local server configured without 'api_key_env')."""
    settings: dict[str, Any] = field(default_factory=dict)
    max_concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    structured: str | None = None
    """How the endpoint takes an answer's JSON schema: "json_schema", "json_object" or None."""
    price: Price | None = None
    """Dollars per million tokens (None: no cost figures for this model)."""
    batch: BatchSettings | None = None
    """Send this model's prompts through the provider's batch API (`batch: true`)."""
    base_urls: list[EndpointSpec] | None = None
    """Several endpoints serving this model (replicas); requests go to the least loaded."""
    client: str = "direct"
    """How chat requests go out: "direct" (the lean aiohttp sender) or "openai" (the client's
    own request path, for endpoints or proxies the lean sender does not suit)."""
    source: str = "name"
    """Where the spec came from, for error messages: a config file path or "name"."""


class ModelRegistry:
    """Resolves model names to shared `Model` instances (one per name, so limits are shared)."""

    def __init__(
        self,
        specs: Mapping[str, ModelSpec] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        config_file: Path | None = None,
        transport: str = "aiohttp",
        require_keys: bool = True,
    ) -> None:
        self._specs = dict(specs or {})
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
        specs = load_config(Path(config_file)) if config_file is not None else {}
        return cls(
            specs,
            env,
            config_file=Path(config_file) if config_file else None,
            require_keys=require_keys,
        )

    def names(self) -> list[str]:
        """Built-in offline model names, then the configured ones."""
        return [*self._offline, *sorted(self._specs)]

    def describe(self, name: str) -> dict[str, Any]:
        """What `get(name).settings()` will be, without needing a key (for fingerprints)."""
        if name in self._offline:
            return self._offline[name].settings()
        spec = self._spec(name)
        described = {
            "model": spec.model,
            "base_url": self._base_url(spec),
            **effective_sampling(spec.settings),
        }
        if spec.base_urls:
            del described["base_url"]  # any replica answers as the model (see lm.endpoints)
        if spec.structured is not None:
            described["structured"] = spec.structured
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
            spec = self._spec(name)
            if spec.api_key_env is None:  # an endpoint configured without a key
                api_key = NO_KEY_PLACEHOLDER
            else:
                api_key = self._env.get(spec.api_key_env, "").strip()
            unusable = None
            if not api_key:
                unusable = ConfigError(self._missing_key(spec))
                if self.require_keys:
                    raise unusable
            from masksql_pipe.lm.openai_model import ClientPool, OpenAIModel

            if self._pool is None:
                self._pool = ClientPool(transport=self._transport)
            model = OpenAIModel(
                name,
                model=spec.model,
                base_url=self._base_url(spec),
                api_key=api_key,
                api_key_env=spec.api_key_env or "",
                sampling=spec.settings,
                limits=CallLimits(
                    spec.max_concurrency or default_concurrency(self._base_url(spec)),
                    spec.rpm,
                    spec.tpm,
                ),
                timeout=spec.timeout,
                max_retries=spec.max_retries,
                structured=spec.structured,
                pool=self._pool,
                direct=spec.client == "direct",
                unusable=unusable,
            )
            if spec.base_urls:
                from masksql_pipe.lm.endpoints import replica_set

                model = replica_set(
                    model,
                    spec.base_urls,
                    CallLimits(spec.max_concurrency, spec.rpm, spec.tpm),
                    default_concurrency,
                )
            model.price = spec.price  # type: ignore[attr-defined]
            model.batch = spec.batch  # type: ignore[attr-defined]
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

    def _spec(self, name: str) -> ModelSpec:
        if name in self._specs:
            return self._specs[name]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"model name {name!r} is not valid; use one of {', '.join(self.names())}, "
                f"an OpenAI model id, or a name from the model config file ({self._config_hint()})"
            )
        return ModelSpec(name=name, model=name)

    def _base_url(self, spec: ModelSpec) -> str:
        return (spec.base_url or self._env.get("OPENAI_BASE_URL") or OFFICIAL_BASE_URL).rstrip("/")

    def _config_hint(self) -> str:
        return str(self.config_file) if self.config_file else f"set ${CONFIG_ENV} or --models"

    def _missing_key(self, spec: ModelSpec) -> str:
        if spec.source != "name":
            return (
                f"model {spec.name!r} ({spec.source}): its key variable ${spec.api_key_env} is "
                "not set; set it in the environment or in .env (or drop 'api_key_env' from the "
                "entry if the endpoint needs no key)"
            )
        others = [name for name in self.names() if name != spec.name]
        close = difflib.get_close_matches(spec.name, others, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"model {spec.name!r}{hint}: no API key; set ${spec.api_key_env} in the environment "
            f"or in .env (model: OpenAI model id {spec.name!r} on {self._base_url(spec)}; "
            f"offline models: {', '.join(self._offline)}; "
            f"other endpoints: model config file, {self._config_hint()})"
        )


def load_config(path: Path) -> dict[str, ModelSpec]:
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
    return {str(name): _parse_spec(path, str(name), entry) for name, entry in data.items()}


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


def _parse_spec(path: Path, name: str, raw: Any) -> ModelSpec:
    """One entry of the models file, checked by its pydantic model (`lm.model_entries`)."""
    from masksql_pipe.lm.model_entries import validate_entry

    entry = validate_entry(path, name, raw)
    return ModelSpec(
        name=name,
        model=entry.model if entry.model is not None else name,
        base_url=entry.base_url,
        api_key_env=entry.key_variable(),
        settings=dict(entry.settings),
        max_concurrency=entry.max_concurrency,
        rpm=entry.rpm,
        tpm=entry.tpm,
        timeout=entry.timeout,
        max_retries=entry.max_retries,
        structured=entry.structured,
        price=Price(**entry.price.model_dump()) if entry.price else None,
        batch=BatchSettings(**entry.batch.model_dump()) if entry.batch else None,
        base_urls=[EndpointSpec(**e.model_dump()) for e in entry.base_urls]
        if entry.base_urls
        else None,
        client=entry.client,
        source=str(path),
    )
