"""Where settings come from outside the command line: `.env` and the model config file.

Found the same way by every caller (the CLI, the model registry, the MaskSQL pipeline):
`.env` in the working folder (real environment variables win), and the model file given,
else $MASKSQL_PIPE_MODELS, else `models.yaml` in the working folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from masksql_pipe.errors import ConfigError

MODELS_ENV = "MASKSQL_PIPE_MODELS"
"""Environment variable naming the model config file when none is given."""
MODELS_FILE = "models.yaml"
"""The model config file read from the working folder when no other is named."""
ENV_FILE = ".env"


def environment(env_file: Path | None = None) -> dict[str, str]:
    """The process environment over the variables of `.env` (``env_file``, else ./.env)."""
    path = Path(env_file) if env_file is not None else Path.cwd() / ENV_FILE
    if env_file is not None and not path.is_file():
        raise ConfigError(f"{path}: env file not found")
    merged: dict[str, str] = {}
    if path.is_file():
        from dotenv import dotenv_values

        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ)
    return merged


def models_file(given: Path | None, env: dict[str, str] | None = None) -> Path | None:
    """The model config file to read: ``given``, else $MASKSQL_PIPE_MODELS, else ./models.yaml."""
    if given is not None:
        return Path(given)
    named = (env if env is not None else environment()).get(MODELS_ENV)
    if named:
        return Path(named)
    default = Path(MODELS_FILE)
    return default if default.is_file() else None
