"""Errors the user sees as one clear line: each names the file, row or setting at fault."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any


class PipeError(Exception):
    """Base class: its message is shown to the user as is, on one line, with a non-zero exit."""

    exit_code: int = 2


class InputError(PipeError):
    """A data file is missing or malformed (names the file and, where it applies, the row)."""


class SpecError(PipeError):
    """A pipeline or DAG specification is invalid (names the node or stage)."""


class ConfigError(PipeError):
    """A setting is wrong or missing: unknown model, missing API key, bad override."""


class ModelError(PipeError):
    """A model call failed for good (after retries, or a status that retrying cannot fix)."""


class StageFatal(PipeError):
    """Stops the whole stage instead of failing one row, since every other row would fail the
    same way (rows already finished are kept)."""


_error_context: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "error_context", default=()
)
"""The ExceptionContext messages open in this task (each asyncio task has its own)."""


class ExceptionContext:
    """``with ExceptionContext("Parsing the reply"):`` an exception leaving the block carries
    the message (and those of enclosing blocks) into the case's recorded error.

    GoTaglio's name. The open messages live in a context variable, not on the class, so rows
    processed concurrently never see each other's context.
    """

    def __init__(self, message: str) -> None:
        self.message = str(message)
        self._tokens: list[contextvars.Token[tuple[str, ...]]] = []

    def __enter__(self) -> ExceptionContext:
        self._tokens.append(_error_context.set((*_error_context.get(), self.message)))
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        stack = _error_context.get()
        _error_context.reset(self._tokens.pop())
        if exc is not None and not hasattr(exc, "_error_context"):  # the innermost block wins
            with contextlib.suppress(AttributeError):  # a type without a __dict__
                exc._error_context = list(stack)  # type: ignore[attr-defined]
        return False

    async def __aenter__(self) -> ExceptionContext:
        return self.__enter__()

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(kind, exc, tb)


def error_context(exc: BaseException) -> list[str]:
    """The ExceptionContext messages an exception left through, outermost first."""
    return list(getattr(exc, "_error_context", None) or [])
