"""Which configuration keys a stage function reads while it runs.

A function stage hands its function the configuration as a `ReadRecorder` view (in
``context["metadata"]["config"]`` and from the pipeline's ``config()`` while the function runs).
Every value read is noted by its dotted key; the stage record keeps the keys, and the next run
fingerprints only their values, so a setting the function never looked at does not make it stale.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Any

ABSENT = "<absent>"
"""Recorded value of a key that was looked up but not there (adding it later is a change)."""

current_reads: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "current_reads", default=None
)
"""The running function stage's set of keys read (None outside a function stage)."""


class ReadRecorder(dict):
    """A read-only view of a nested configuration dict that notes each dotted key read.

    A dict (glom and ``isinstance(x, dict)`` treat it as one). Reading a leaf notes its key;
    reading a sub-dict returns a view of it; iterating a dict (``items()``, ``for key in``) notes
    the whole dict, since the function may depend on every entry.
    """

    def __init__(self, data: dict[str, Any], reads: set[str], prefix: str = "") -> None:
        super().__init__(data)
        self._reads = reads
        self._prefix = prefix

    def _key(self, key: Any) -> str:
        return f"{self._prefix}{key}"

    def _whole(self) -> None:
        self._reads.add(self._prefix.rstrip(".") or "*")

    def __getitem__(self, key: Any) -> Any:
        try:
            value = super().__getitem__(key)
        except KeyError:
            self._reads.add(self._key(key))
            raise
        if isinstance(value, dict):
            return ReadRecorder(value, self._reads, f"{self._key(key)}.")
        self._reads.add(self._key(key))
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if super().__contains__(key):
            return self[key]
        self._reads.add(self._key(key))
        return default

    def __contains__(self, key: object) -> bool:
        self._reads.add(self._key(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[Any]:
        self._whole()
        return super().__iter__()

    def keys(self) -> Any:
        self._whole()
        return super().keys()

    def items(self) -> Any:
        self._whole()
        return super().items()

    def values(self) -> Any:
        self._whole()
        return super().values()

    def copy(self) -> dict[str, Any]:
        self._whole()
        return dict(super().items())


def recording(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as a `ReadRecorder` for the running function stage, else as it is."""
    reads = current_reads.get()
    return config if reads is None else ReadRecorder(config, reads)


def values_of(config: dict[str, Any], keys: set[str] | list[str]) -> dict[str, Any]:
    """The current value of each recorded key (`ABSENT` when the key is gone); ``*`` is the
    whole configuration."""
    from masksql_pipe.engine.dotted import get_path, has_path

    found: dict[str, Any] = {}
    if "*" in keys:
        return {"*": config}
    for key in sorted(keys):
        if any(key.startswith(f"{other}.") for other in keys):
            continue  # its dict was read whole: the value is in there
        found[key] = get_path(config, key, None) if has_path(config, key) else ABSENT
    return found
