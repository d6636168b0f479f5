"""Pydantic models of the MaskSQL pipeline's settings sections, validated in one way.

`masksql_pipe.experiment.config.validate_section(config, "ranking", RankingCaps)` returns the
section as one object or stops with one line naming the setting (`ranking.max_tables: ...`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class RankingCaps(BaseModel):
    """How many ranked tables, and columns per table, AddFilteredSchema keeps (0: no cap),
    and whether each kept table keeps a text column the ranking dropped."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # `file` shares the section

    max_tables: StrictInt = Field(0, ge=0)
    max_columns: StrictInt = Field(0, ge=0)
    keep_text_column: StrictBool = True
    """Each kept table also keeps its first text column (its name, as a rule): "which
    stadium ..." is answered with the name even when the ranking dropped it."""


class ModelRoles(BaseModel):
    """The model names of the two roles: the small local model and the large remote one."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    slm: StrictStr = Field(min_length=1, description="a model name (see `python main.py models`)")
    llm: StrictStr = Field(min_length=1, description="a model name (see `python main.py models`)")


class DataFiles(BaseModel):
    """Where the dataset's schema file and databases are ('' : the layout's own), and what a
    run does when tables.json and a database disagree (`stop`, or `warn`: run and record it
    on each affected row)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tables: StrictStr = ""
    databases: StrictStr = ""
    schema_check: Literal["stop", "warn"] = "stop"
