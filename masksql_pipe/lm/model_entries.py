"""The models file's entries as pydantic models: one place that says what each setting takes.

The registry and the model layer use them as they are (a model's `price`, `batch` settings and
`base_urls` are these objects), so each concept has one definition.

`validate_entry` (and the `price`, `batch` and `base_urls` parts on their own) turn pydantic's
errors into the one line a user needs: the file, the model, the setting, what it takes and
what was given (never a value that could be a key).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from masksql_pipe.engine.scrub import scrub_text
from masksql_pipe.errors import ConfigError
from masksql_pipe.lm.endpoint_defaults import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT

CLIENTS = ("direct", "openai")
"""How chat requests are sent: the lean aiohttp sender, or the `openai` client's request path."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _number(value: Any) -> Any:
    """Numbers only: YAML's `true` or `"5"` is a mistake, not 1 or 5."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    return value


def _whole(value: Any) -> Any:
    """A whole number (8 or 8.0)."""
    _number(value)
    if value != int(value):
        raise ValueError(f"must be a whole number, got {value!r}")
    return int(value)


def _http_url(value: Any) -> Any:
    if not (isinstance(value, str) and value.startswith(("http://", "https://"))):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


Number = Annotated[float, BeforeValidator(_number)]
Whole = Annotated[int, BeforeValidator(_whole)]
HttpUrl = Annotated[str, BeforeValidator(_http_url)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Entry):
    """`price:` dollars per million tokens, as providers publish them; `batch_discount` is the
    fraction paid through a batch API."""

    input: Number = Field(ge=0, description="dollars per million tokens")
    output: Number = Field(ge=0, description="dollars per million tokens")
    cached_input: Number | None = Field(
        None, ge=0, description="dollars per million prompt tokens served from the cache"
    )
    batch_discount: Number = Field(
        1.0, gt=0, le=1, description="the fraction paid in batch mode: 0.5 = half price"
    )

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        *,
        batch: bool = False,
    ) -> float:
        """Dollars for one call; `cached_tokens` (part of the prompt) bill at `cached_input`."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        dollars = (
            (prompt_tokens - cached) * self.input
            + cached * cached_rate
            + completion_tokens * self.output
        ) / 1_000_000
        return dollars * (self.batch_discount if batch else 1.0)

    def to_dict(self) -> dict[str, Any]:
        """The table as given in the models file (for records and fingerprints)."""
        data: dict[str, Any] = {"input": self.input, "output": self.output}
        if self.cached_input is not None:
            data["cached_input"] = self.cached_input
        if self.batch_discount != 1.0:
            data["batch_discount"] = self.batch_discount
        return data


class EndpointEntry(_Entry):
    """One item of `base_urls:`: a URL, or a mapping with the URL and its own limits."""

    url: HttpUrl
    max_concurrency: Whole | None = Field(None, gt=0)
    rpm: Number | None = Field(None, gt=0)
    tpm: Number | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _bare_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"url": value}
        if not isinstance(value, dict):
            raise ValueError("must be a URL or a mapping with 'url'")
        return value


class BatchSettings(_Entry):
    """`batch: true` or `batch: {...}`: a provider's batch limits and how often to poll
    (OpenAI's limits by default)."""

    max_requests: Whole = Field(50_000, gt=0, description="requests per batch")
    max_bytes: Whole = Field(190 * 1024**2, gt=0, description="bytes per input file")
    # OpenAI allows 200 MB a file: the margin holds the multipart overhead
    poll_seconds: Number = Field(5.0, gt=0)
    max_poll_seconds: Number = Field(60.0, gt=0)
    window: str = Field("24h", description="like '24h'")


def _batch(value: Any) -> Any:
    """`true` means the defaults, `false` none; otherwise a mapping of batch settings (or, from
    code, the settings themselves)."""
    if value is True:
        return {}
    if value is False:
        return None
    if value is not None and not isinstance(value, dict | BatchSettings):
        raise ValueError(f"must be true, false or a mapping of batch settings, got {value!r}")
    return value


class ModelEntry(_Entry):
    """One model of the models file: `name: {model, base_url, api_key_env, settings, ...}`."""

    model: str | None = Field(None, description="the model id sent to the endpoint")
    base_url: HttpUrl | None = None
    base_urls: list[EndpointEntry] | None = Field(None, min_length=1)
    api_key_env: str | None = None
    settings: dict[str, Any] = Field(
        default_factory=dict, description="sampling settings: temperature, max_tokens, ..."
    )
    max_concurrency: Whole | None = Field(None, ge=1)
    rpm: Number | None = Field(None, ge=0.001)
    tpm: Number | None = Field(None, ge=1)
    timeout: Number = Field(DEFAULT_TIMEOUT, ge=0.001, description="seconds per request")
    max_retries: Whole = Field(DEFAULT_MAX_RETRIES, ge=0)
    structured: Literal["json_schema", "json_object"] | None = None
    price: Price | None = None
    batch: Annotated[BatchSettings | None, BeforeValidator(_batch)] = None
    client: Literal["direct", "openai"] = Field(
        "direct", description="direct: the lean sender; openai: the openai client"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_keys_here(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"model": value}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping (model, base_url, settings, ...)")
        if "api_key" in value:
            raise ValueError(
                "keys do not belong in the config file; put the key in an environment variable "
                "(or .env) and name it with 'api_key_env'"
            )
        return {
            key: item for key, item in value.items() if item is not None or key == "api_key_env"
        }

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a model id string")
        return value

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _env_name(cls, value: Any) -> Any:
        if value is not None and not (isinstance(value, str) and _ENV_NAME.match(value)):
            raise ValueError("must be an environment variable name")
        return value

    @field_validator("base_urls")
    @classmethod
    def _distinct(cls, value: list[EndpointEntry] | None) -> list[EndpointEntry] | None:
        if value and len({endpoint.url for endpoint in value}) != len(value):
            raise ValueError("lists the same URL twice")
        return value

    @model_validator(mode="after")
    def _one_endpoint_form(self) -> ModelEntry:
        if self.base_url is not None and self.base_urls is not None:
            raise ValueError("give 'base_url' or 'base_urls', not both")
        return self

    def key_variable(self) -> str | None:
        """The variable holding the key: as given; none for an endpoint of one's own named
        without one (a local server); else OPENAI_API_KEY."""
        if "api_key_env" in self.model_fields_set:
            return self.api_key_env
        own_endpoint = self.base_url is not None or self.base_urls is not None
        return None if own_endpoint else "OPENAI_API_KEY"


Part = TypeVar("Part", bound=BaseModel)


def validate_part(kind: type[Part], value: Any, where: str, setting: str = "") -> Part:
    """``kind`` from ``value``; ConfigError with one line naming ``where`` and the setting
    (``setting``: where ``value`` sits in an entry, e.g. ``price``)."""
    try:
        return kind.model_validate(value)
    except ValidationError as exc:
        errors = sorted(exc.errors(include_url=False), key=_most_telling)
        problem = _describe(kind, errors[0], setting)
        raise ConfigError(scrub_text(f"{where}: {problem}")) from None


def validate_entry(path: Any, name: str, value: Any) -> ModelEntry:
    """One models-file entry; ConfigError naming the file, the model and the setting."""
    return validate_part(ModelEntry, value, f"{path}: model {name!r}")


_BOUNDS = {
    "greater_than": "a number > {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "a number < {lt}",
    "less_than_equal": "at most {le}",
}


def _most_telling(error: Any) -> int:
    """Errors about the entry as a whole, then unknown keys (a misspelt key also shows up as a
    missing one), then the rest in field order."""
    if error["type"] == "value_error" and not error["loc"]:
        return 0
    return 1 if error["type"] == "extra_forbidden" else 2


def _describe(kind: type[BaseModel], error: Any, setting: str) -> str:
    """One pydantic error as a phrase: ``'price.input' must be at least 0, got -1``."""
    loc = list(error["loc"])
    shown = [setting, *loc] if setting else loc
    kind_of = error["type"]
    got = f", got {error['input']!r}" if _echoable(error.get("input")) else ""
    hint = _description(kind, loc)
    hint = f" ({hint})" if hint else ""
    named = f"'{_dotted(shown)}'"
    if kind_of == "value_error":  # the validators' own words: about the entry, or a setting
        said = error["msg"].removeprefix("Value error, ")
        return f"{named} {said}" if loc else said
    if not loc and not setting:
        return error["msg"]
    if kind_of == "extra_forbidden":
        owner = _model_at(kind, loc[:-1])
        known = f" (known: {', '.join(owner.model_fields)})" if owner else ""
        section = f"{_dotted(shown[:-1])} " if shown[:-1] else ""
        return f"unknown {section}key {loc[-1]!r}{known}"
    if kind_of == "missing":
        needs = f"'{_dotted(shown[:-1])}' needs" if shown[:-1] else "needs"
        return f"{needs} {loc[-1]!r}{hint}"
    if kind_of in _BOUNDS:
        limits = {key: f"{value:g}" for key, value in (error.get("ctx") or {}).items()}
        bound = _BOUNDS[kind_of].format(**limits)
        return f"{named} must be {bound}{got}{hint}"
    if kind_of == "literal_error":
        return f"{named} must be one of {error['ctx']['expected']}{got}"
    if kind_of in ("dict_type", "model_type", "model_attributes_type"):
        return f"{named} must be a mapping{hint}{got}"
    if kind_of in ("list_type", "too_short"):
        return f"{named} must be a non-empty list{got}"
    if kind_of == "string_type":
        return f"{named} must be a string{hint}{got}"
    return f"{named}: {error['msg'][:1].lower()}{error['msg'][1:]}{got}"


def _dotted(loc: list[Any]) -> str:
    """``['base_urls', 1, 'url']`` -> ``base_urls[1].url``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(kind: type[BaseModel], loc: list[Any]) -> type[BaseModel] | None:
    """The entry model a location leads to (``['price']`` -> Price), for its keys."""
    model: type[BaseModel] | None = kind
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if model else None
        model = _model_in(info.annotation) if info else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[EndpointEntry] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for inner in getattr(annotation, "__args__", ()):
        found = _model_in(inner)
        if found is not None:
            return found
    return None


def _description(kind: type[BaseModel], loc: list[Any]) -> str | None:
    """The field's own description, as a hint of what it takes."""
    fields = [part for part in loc if not isinstance(part, int)]
    owner = _model_at(kind, fields[:-1]) if fields else None
    info = owner.model_fields.get(fields[-1]) if owner else None
    return info.description if info else None


def _echoable(value: Any) -> bool:
    """Only short plain values are repeated back (never a mapping that could hold a key)."""
    return value is None or (isinstance(value, int | float | str) and len(str(value)) <= 80)
