"""Errors the user sees as one clear line: each names the file, row or setting at fault."""

from __future__ import annotations


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
