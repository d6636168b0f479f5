"""Pipeline configuration: defaults with Prompt/Internal markers, dotted overrides, config files.

A pipeline declares a nested dict of defaults; the user replaces it with a file (``--config``)
and patches single values with ``key.path=value`` bindings; the runtime fills Internal values.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from masksql_pipe.engine.dotted import get_path, has_path, set_path
from masksql_pipe.errors import ConfigError

__all__ = [
    "REDACTED",
    "Internal",
    "MissingSettingsError",
    "Prompt",
    "build_template",
    "from_jsonable",
    "get_dotted",
    "iter_dotted",
    "load_config_file",
    "loggable",
    "missing_internal",
    "parse_overrides",
    "redact",
    "resolve_config",
    "set_dotted",
    "set_internal",
    "to_jsonable",
    "validate_section",
]

REDACTED = "***"
_MISSING = object()
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Prompt:
    """A setting the user must supply (on the command line or in a config file)."""

    help: str

    def __str__(self) -> str:
        return f"<Prompt: {self.help}>"


@dataclass(frozen=True)
class Internal:
    """A setting the runtime fills in during pipeline initialization; users may not set it."""

    def __str__(self) -> str:
        return "<Internal>"


class MissingSettingsError(ConfigError):
    """Some Prompt settings have no value; ``missing`` lists every (dotted key, help) pair."""

    def __init__(self, missing: list[tuple[str, str]]) -> None:
        self.missing = missing
        listed = "; ".join(f"{key} ({help_text})" for key, help_text in missing)
        noun = "setting" if len(missing) == 1 else "settings"
        super().__init__(f"missing required {noun}: {listed}; supply each as KEY=VALUE")


# ---------------------------------------------------------------------------------------------
# Dotted paths


def get_dotted(obj: Any, path: str, default: Any = _NO_DEFAULT) -> Any:
    """Value at a dotted path (``a.b.0.c``); KeyError naming the path unless a default is given."""
    if default is _NO_DEFAULT and not has_path(obj, path):
        raise KeyError(path)
    return get_path(obj, path, None if default is _NO_DEFAULT else default)


def set_dotted(obj: Any, path: str, value: Any) -> None:
    """Set the value at a dotted path, creating missing dicts on the way; integers index lists."""
    try:
        set_path(obj, path, value)
    except KeyError as exc:
        raise ConfigError(f"setting {exc.args[0]}") from None


def iter_dotted(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted key, value) for every node below obj, parents before children."""
    if isinstance(obj, Mapping):
        items: Iterator[tuple[Any, Any]] = iter(obj.items())
    elif isinstance(obj, list):
        items = iter(enumerate(obj))
    else:
        return
    for key, value in items:
        dotted = f"{prefix}.{key}" if prefix else str(key)
        yield dotted, value
        yield from iter_dotted(value, dotted)


# ---------------------------------------------------------------------------------------------
# Command-line overrides and config files


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def _parse_value(text: str) -> Any:
    """A JSON value where the text is one (42, true, null, [1], {"a": 1}, "s"), else the text."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``key.path=value`` bindings into {dotted key: value}; later bindings win."""
    patch: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"bad setting override {item!r}: expected KEY=VALUE")
        if not key:
            raise ConfigError(f"bad setting override {item!r}: the key before '=' is empty")
        if any(not part for part in key.split(".")):
            raise ConfigError(f"bad setting override {item!r}: empty segment in key {key!r}")
        patch[key] = _parse_value(raw)
    return patch


_MARKER_TEXT = re.compile(r"<Prompt: (?P<help>.*)>|<Internal>", re.DOTALL)


def from_jsonable(obj: Any) -> Any:
    """Inverse of to_jsonable: turn "<Prompt: help>" / "<Internal>" strings back into markers."""
    if isinstance(obj, str):
        match = _MARKER_TEXT.fullmatch(obj)
        if match is None:
            return obj
        return Internal() if match.group("help") is None else Prompt(match.group("help"))
    if isinstance(obj, Mapping):
        return {key: from_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(value) for value in obj]
    return obj


def to_jsonable(obj: Any) -> Any:
    """A JSON-ready copy of a config: markers become "<Prompt: help>" / "<Internal>" strings."""
    if isinstance(obj, Prompt | Internal):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(value) for value in obj]
    return obj


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Load a YAML (.yaml/.yml) or JSON (.json) config that replaces a pipeline's defaults."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(
            f"config file {path}: unsupported type {suffix or '(none)'!r}; use .yaml, .yml or .json"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"config file {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}"
            ) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"config file {path}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"config file {path}: expected a mapping of settings at the top, got {kind}"
        )
    return from_jsonable(data)


# ---------------------------------------------------------------------------------------------
# Resolution


def _internal_paths(config: Any) -> list[str]:
    return [key for key, value in iter_dotted(config) if isinstance(value, Internal)]


def loggable(config: Any) -> Any:
    """The config as it goes into a run log: markers as strings, secrets replaced by "***"."""
    return redact(to_jsonable(config))


def missing_internal(config: Any) -> list[str]:
    """Dotted keys whose Internal marker the runtime has not filled yet."""
    return _internal_paths(config)


def _prompts(config: Any) -> list[tuple[str, str]]:
    return [(key, value.help) for key, value in iter_dotted(config) if isinstance(value, Prompt)]


def _unknown_key_message(base: Any, key: str) -> str:
    """Message for a path that does not exist: the closest existing key, else the valid names."""
    segments = key.split(".")
    depth = 0
    while depth < len(segments) and has_path(base, ".".join(segments[: depth + 1])):
        depth += 1
    prefix = ".".join(segments[:depth])
    parent: Any = get_path(base, prefix)
    if not isinstance(parent, Mapping | list):
        return f"unknown setting '{key}'; '{prefix}' is a single value with no sub-settings"
    if isinstance(parent, list):
        return f"unknown setting '{key}'; '{prefix}' is a list of {len(parent)} item(s)"
    known = {dotted for dotted, _ in iter_dotted(base)}
    names = [str(name) for name in parent]
    close = difflib.get_close_matches(segments[depth], names, n=1, cutoff=0.6)
    if close:
        fixed = ".".join([*segments[:depth], close[0], *segments[depth + 1 :]])
        guess = fixed if fixed in known else ".".join([*segments[:depth], close[0]])
        return f"unknown setting '{key}'; did you mean '{guess}'?"
    ancestors = {".".join(segments[:n]) for n in range(1, len(segments))}
    close = difflib.get_close_matches(key, sorted(known - ancestors), n=1, cutoff=0.75)
    if close:
        return f"unknown setting '{key}'; did you mean '{close[0]}'?"
    where = f"'{prefix}'" if prefix else "the top level"
    if names:
        return f"unknown setting '{key}'; {where} has: {', '.join(names)}"
    return f"unknown setting '{key}'"


def resolve_config(
    defaults: dict[str, Any], replacement: dict[str, Any] | None, patch: dict[str, Any]
) -> dict[str, Any]:
    """Build the run config: replacement (else defaults), dotted patches, then check Prompts.

    Internal settings of the defaults stay Internal even in a replacement (the runtime recomputes
    them, so a run log's config can be replayed); patching one is an error. Every Prompt still
    unset is reported together in one MissingSettingsError.
    """
    config = copy.deepcopy(replacement if replacement is not None else defaults)
    if not isinstance(config, dict):
        raise ConfigError("the pipeline configuration must be a mapping of settings")
    if replacement is not None:
        for dotted in _internal_paths(defaults):
            set_dotted(config, dotted, Internal())
    for key, value in patch.items():
        current = get_dotted(config, key, _MISSING)
        if current is _MISSING:
            raise ConfigError(_unknown_key_message(config, key))
        if isinstance(current, Internal):
            raise ConfigError(f"setting '{key}' is filled in by the pipeline and cannot be set")
        inner = _internal_paths(current)
        if inner:
            raise ConfigError(
                f"setting '{key}' contains '{key}.{inner[0]}', which is filled in by the "
                "pipeline and cannot be set"
            )
        if isinstance(value, Internal):
            raise ConfigError(f"setting '{key}' cannot be set to an Internal marker")
        set_dotted(config, key, copy.deepcopy(value))
    missing = _prompts(config)
    if missing:
        raise MissingSettingsError(missing)
    return config


def set_internal(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Fill an Internal setting (runtime only); an error if the key is not an Internal slot."""
    current = get_dotted(config, dotted, _MISSING)
    if not isinstance(current, Internal):
        raise ConfigError(f"setting '{dotted}' is not an Internal setting of this pipeline")
    set_dotted(config, dotted, value)


def build_template(
    config: dict[str, Any],
    template_key: str,
    text_key: str,
    *,
    folders: Iterable[Path | str] = (),
) -> Callable[[Mapping[str, Any]], Awaitable[str]]:
    """GoTaglio's ``build_template``: compile the jinja2 file named at ``template_key`` (a
    relative name is looked up in the working folder, then in ``folders``), keep its text at
    ``text_key`` (an Internal setting: the run log and the stage fingerprints carry it), and
    return ``async template(context) -> str`` rendering with the context's keys (``case``...).
    """
    import jinja2

    name = get_dotted(config, template_key, _MISSING)
    if name is _MISSING:
        raise ConfigError(_unknown_key_message(config, template_key))
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"setting '{template_key}' must be a template file, got {name!r}")
    given = Path(name).expanduser()
    candidates = [given] + ([] if given.is_absolute() else [Path(f) / given for f in folders])
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        where = ", ".join(str(c) for c in candidates)
        raise ConfigError(f"setting '{template_key}': template file not found ({where})")
    try:
        text = path.read_text(encoding="utf-8")
        template = jinja2.Environment(
            undefined=jinja2.StrictUndefined, autoescape=False
        ).from_string(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"template {path}: cannot be read ({exc})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"template {path}:{exc.lineno}: {exc.message}") from None
    current = get_dotted(config, text_key, _MISSING)
    if current is _MISSING:
        raise ConfigError(_unknown_key_message(config, text_key))
    if isinstance(current, Internal):
        set_internal(config, text_key, text)
    else:  # stages() ran before in this process: the slot holds the text already
        set_dotted(config, text_key, text)

    async def render(context: Mapping[str, Any]) -> str:
        return template.render(dict(context))

    render.__fingerprint__ = {"template": text}  # type: ignore[attr-defined]  # what it renders
    return render


# ---------------------------------------------------------------------------------------------
# Validation


ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_section(config: dict[str, Any], dotted: str, model: type[ModelT]) -> ModelT:
    """Validate the sub-dict at ``dotted`` with a pydantic model; one ConfigError line if bad."""
    section = get_dotted(config, dotted, _MISSING)
    if section is _MISSING:
        raise ConfigError(_unknown_key_message(config, dotted))
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            parts = [dotted] if dotted else []
            parts += [str(part) for part in error["loc"]]
            key = ".".join(parts) or "<root>"
            detail = error["msg"]
            if error["type"] != "missing":
                detail += f" (got {error['input']!r})" if "input" in error else ""
            problems.append(f"{key}: {detail}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None


# ---------------------------------------------------------------------------------------------
# Redaction

# Whole words in a key name (split on non-letters and camelCase) that mark a secret ...
_SECRET_WORDS = {"key", "apikey", "token", "secret", "password", "passwd", "authorization", "auth"}
# ... and substrings that mark one anywhere in the name.
_SECRET_PARTS = ("api_key", "apikey", "api-key", "secret", "password", "authorization")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+\S+")
# Provider key shapes (OpenAI-style "sk-...") wherever they appear in free text.
_KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")


def _key_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]


def _is_secret_key(name: str) -> bool:
    """True for key names such as api_key, OPENAI_API_KEY, apiKey, access_token, Authorization."""
    lowered = name.lower()
    if any(part in lowered for part in _SECRET_PARTS):
        return True
    return any(word in _SECRET_WORDS for word in _key_words(name))


def _redact_text(text: str) -> str:
    """Redact secrets inside free text: ``a.api_key=VALUE`` bindings and bearer credentials."""
    key, sep, _ = text.partition("=")
    if sep and key and " " not in key.strip() and _is_secret_key(key.strip().split(".")[-1]):
        return f"{key}={REDACTED}"
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEY_SHAPE.sub(f"sk-{REDACTED}", text)


def _is_secret_flag(item: Any) -> bool:
    """A command-line flag such as ``--api-key`` whose next argument is a secret."""
    return (
        isinstance(item, str)
        and item.startswith("-")
        and "=" not in item
        and _is_secret_key(item.lstrip("-"))
    )


def redact(obj: Any) -> Any:
    """A deep copy with secret values replaced by "***", so run logs never contain keys.

    A string (or list of strings) under a secret-looking key is replaced; numbers are kept (so
    ``max_tokens: 800`` survives); free strings lose ``api_key=...`` values, bearer tokens and
    "sk-..." keys; in an argument list the value after a flag like ``--api-key`` is replaced.
    """

    def walk(value: Any, secret: bool) -> Any:
        if isinstance(value, Mapping):
            return {k: walk(v, _is_secret_key(str(k))) for k, v in value.items()}
        if isinstance(value, list | tuple):
            out = []
            for i, item in enumerate(value):
                after_flag = i > 0 and _is_secret_flag(value[i - 1])
                out.append(walk(item, secret or after_flag))
            return out
        if isinstance(value, str | bytes):
            if secret and value:
                return REDACTED
            return _redact_text(value) if isinstance(value, str) else value
        return copy.deepcopy(value)

    return walk(obj, False)
