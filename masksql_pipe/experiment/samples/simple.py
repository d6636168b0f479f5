"""The ``simple`` sample: a model used as a calculator, in four linear stages.

``prepare`` renders a jinja2 system message, ``infer`` asks the model, ``extract`` parses a
number from the reply and ``assess`` subtracts the expected answer (0 means the case passed).
Run it offline: ``python main.py --data data/samples/simple --pipeline simple
infer.model.name=perfect`` (or ``flakey`` to see errors recorded, ``echo`` to see failures).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from masksql_pipe.engine.files import read_rows
from masksql_pipe.engine.stage import ERROR_KEY
from masksql_pipe.errors import ConfigError
from masksql_pipe.experiment.config import (
    Internal,
    Prompt,
    get_dotted,
    set_internal,
    validate_section,
)
from masksql_pipe.experiment.functions import RESULTS_KEY, FunctionStage, StageFunction
from masksql_pipe.experiment.pipeline import ConfiguredPipeline
from masksql_pipe.experiment.samples import SAMPLES_DIR
from masksql_pipe.lm.base import Model

DEFAULT_TEMPLATE = "simple_system.j2"
"""The shipped system-message template (looked up in the samples folder when not found)."""

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class ModelSettings(BaseModel):
    """Sampling settings of ``infer.model.settings``; other keys pass through to the endpoint."""

    model_config = ConfigDict(extra="allow")

    max_tokens: int = Field(800, ge=1)
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    frequency_penalty: float = Field(0, ge=-2, le=2)
    presence_penalty: float = Field(0, ge=-2, le=2)


class SimplePipeline(ConfiguredPipeline):
    """Calculator cases ``{"id", "user", "answer"}``: prepare -> infer -> extract -> assess."""

    _name = "simple"
    _description = (
        "A model as a calculator: render a system prompt, ask, parse the number, "
        "compare it with the expected answer (offline models: perfect, flakey, echo)."
    )

    def defaults(self) -> dict[str, Any]:
        """The default configuration, before a config file or dotted overrides change it."""
        return {
            "prepare": {
                "template": DEFAULT_TEMPLATE,
                "template_text": Internal(),
            },
            "infer": {
                "model": {
                    "name": Prompt("Model name to use for inference stage"),
                    "settings": {
                        "max_tokens": 800,
                        "temperature": 0.7,
                        "top_p": 0.95,
                        "frequency_penalty": 0,
                        "presence_penalty": 0,
                    },
                }
            },
        }

    def stages(self) -> dict[str, FunctionStage]:
        """Compile the template and resolve the model first, then return the four stages."""
        config = self.config()
        # Set-up before any case runs, so a typo in a model name or a template stops the run.
        path = find_template(get_dotted(config, "prepare.template"), self.data_dir)
        text = read_template(path)
        template = compile_template(text, path)
        set_internal(config, "prepare.template_text", text)
        settings = validate_section(config, "infer.model.settings", ModelSettings)
        model = self._model(get_dotted(config, "infer.model.name"), settings.model_dump())

        async def prepare(context: dict[str, Any]) -> list[dict[str, str]]:
            # The system message from the template, then the case's question.
            case = context["case"]
            try:
                system = template.render(case=case)
            except jinja2.UndefinedError as exc:
                raise ConfigError(
                    f"template {path}: {exc} (case fields: {', '.join(case)})"
                ) from None
            return [
                {"role": "system", "content": system},
                {"role": "user", "content": str(case["user"])},
            ]

        async def infer(context: dict[str, Any]) -> Any:
            # The Completion is recorded as its text; its tokens and latency go to the row.
            answer = context["case"].get("answer")
            oracle = None if answer is None else _number_text(answer)
            return await context["complete"](model, context["stages"]["prepare"], oracle=oracle)

        async def extract(context: dict[str, Any]) -> int | float:
            # Raises on a reply with no number in it: the case is recorded as an error.
            return parse_number(context["stages"]["infer"])

        async def assess(context: dict[str, Any]) -> int | float:
            # Zero when the model's number is the expected answer.
            return context["stages"]["extract"] - context["case"]["answer"]

        return linear_stages(
            {"prepare": prepare, "infer": infer, "extract": extract, "assess": assess},
            {
                "prepare": {"template_text": text},
                "infer": {"model": model.settings(), "settings": settings.model_dump()},
            },
        )

    def _model(self, name: Any, settings: dict[str, Any]) -> Model:
        """The registry's model for ``name``, with ``settings`` applied to remote models."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"setting 'infer.model.name' must be a model name, got {name!r}")
        if self._registry is None:
            from masksql_pipe.lm.registry import ModelRegistry

            self._registry = ModelRegistry.from_environment()
        model = self._registry.get(name)
        sampling = getattr(model, "sampling", None)
        if model.offline or not isinstance(sampling, dict):
            return model
        tuned = copy.copy(model)  # shares the client pool and limits of the registry's model
        tuned.sampling = {**sampling, **settings}
        return tuned

    def describe(self) -> str:
        """One line for the start of a run: the model and the template."""
        config = self.config()
        return (
            f"model {get_dotted(config, 'infer.model.name')}, "
            f"template {get_dotted(config, 'prepare.template')}"
        )

    def case_passed(self, row: dict[str, Any]) -> bool | None:
        """A case passes when ``assess`` is zero (the model's number equals the answer)."""
        difference = (row.get(RESULTS_KEY) or {}).get("assess")
        if isinstance(difference, bool) or not isinstance(difference, int | float):
            return None
        return difference == 0

    def case_result(self, row: dict[str, Any]) -> Any:
        """The expected and extracted numbers, for reports."""
        results = row.get(RESULTS_KEY) or {}
        return {"expected": row.get("answer"), "answer": results.get("extract")}

    def report(self, last_file: Path, console: Console) -> None:
        """Print how many cases the model got right."""
        rows = read_rows(last_file)
        passed = sum(1 for row in rows if self.case_passed(row) is True)
        errors = sum(1 for row in rows if ERROR_KEY in row)
        console.print(
            f"simple: {passed} of {len(rows)} answers correct, {errors} errors", highlight=False
        )


def linear_stages(
    functions: dict[str, StageFunction], metadata: dict[str, dict[str, Any]]
) -> dict[str, FunctionStage]:
    """Wrap a linear dict of stage functions, each with the settings its closure captured.

    The settings go into the stage fingerprint, so changing the model or the template makes
    that stage (and the ones after it) stale instead of reusing old outputs.
    """
    stages: dict[str, FunctionStage] = {}
    previous: list[str] = []
    for name, function in functions.items():
        stages[name] = FunctionStage(name, function, previous, metadata.get(name, {}))
        previous = [name]
    return stages


def find_template(value: Any, data_dir: Path | None) -> Path:
    """The template file: as given, else in the data folder, else among the shipped samples."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"setting 'prepare.template' must be a file path, got {value!r}")
    given = Path(value).expanduser()
    candidates = [given]
    if not given.is_absolute():
        if data_dir is not None:
            candidates.append(Path(data_dir) / given)
        candidates.append(SAMPLES_DIR / given)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"setting 'prepare.template': template file not found (looked at {where})")


def read_template(path: Path) -> str:
    """The template's text; a one-line error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"template {path}: cannot be read ({exc})") from None


def compile_template(text: str, path: Path) -> jinja2.Template:
    """Compile with StrictUndefined, so a variable the case lacks is an error, not a blank."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return env.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"template {path}:{exc.lineno}: {exc.message}") from None


def parse_number(text: Any) -> int | float:
    """The last number in a model reply (``"42"``, ``"It is 1,000."``); ValueError if none."""
    found = _NUMBER.findall(str(text))
    if not found:
        shown = str(text) if len(str(text)) <= 80 else str(text)[:79] + "…"
        raise ValueError(f"no number in the model's reply {shown!r}")
    token = found[-1].replace(",", "")
    return float(token) if "." in token else int(token)


def _number_text(value: Any) -> str:
    """An expected answer as a perfect model would write it (42, not 42.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
