"""Stage records: how each stage file was made. Checked on read, never trusted when malformed.

``DIR/.masksql_pipe/stages/<key>.json`` holds the fingerprint (and the parts it hashes), the
input, output and external file states, and the figures of the run that wrote the file. A
record is written *before* the output is renamed into place as ``<key>.pending.json`` and
promoted after: a kill between the two leaves a pending record whose output digest proves the
file is ours, so it is never mistaken for a hand edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from masksql_pipe.engine.files import (
    FileState,
    confirmed_state,
    current_digest,
    read_json,
    write_json,
)

_COUNTS = ("rows", "errors")


def record_path(book: Path, key: str) -> Path:
    """Where the record of stage file ``key`` lives."""
    return book / "stages" / f"{key}.json"


def pending_path(book: Path, key: str) -> Path:
    """Where a record waits while its output is being renamed into place."""
    return book / "stages" / f"{key}.pending.json"


def check_record(record: Any) -> str | None:
    """What is wrong with a record (one phrase), or None when every field it needs is sound."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if not isinstance(record.get("fingerprint"), str):
        return "field 'fingerprint' is missing or not a string"
    for name in ("input", "output"):
        if FileState.from_dict(record.get(name)) is None:
            return f"field {name!r} is not a file state (size, mtime_ns, digest)"
    for name in _COUNTS:
        value = record.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"field {name!r} is not a count"
    for name in ("stats", "external", "parts"):
        if name in record and not isinstance(record[name], dict):
            return f"field {name!r} is not an object"
    for file, state in (record.get("external") or {}).items():
        if FileState.from_dict(state) is None:
            return f"external file {file!r} has no valid state"
    for name in ("total_toks", "total_latency"):
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"field {name!r} is not a number"
    if "tracebacks" in record and not isinstance(record["tracebacks"], list):
        return "field 'tracebacks' is not a list"
    return None


def load_record(book: Path, key: str, output: Path) -> tuple[dict[str, Any] | None, str, bool]:
    """(record, problem, pending) of stage file ``key``.

    ``record`` is None when there is none or it is malformed (``problem`` says why, naming the
    file). ``pending`` is True when the record comes from a pending one whose output digest
    matches the file on disk: the writer was killed after the rename, before promoting it.
    """
    pending = read_json(pending_path(book, key))
    if pending is not None and check_record(pending) is None:
        known = FileState.from_dict(pending["output"])
        try:
            stat = output.stat()
        except OSError:
            stat = None
        if known is not None and stat is not None and current_digest(output, None) == known.digest:
            record = dict(pending)
            record["output"] = {
                **pending["output"],
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
            }
            return record, "", True
    path = record_path(book, key)
    if not path.exists():
        return None, "", False
    record = read_json(path)
    if record is None:
        return None, f"{path}: unreadable (not JSON); ignored, the stage reruns", False
    problem = check_record(record)
    if problem:
        return None, f"{path}: {problem}; ignored, the stage reruns", False
    return record, "", False


def promote(book: Path, key: str, record: dict[str, Any]) -> None:
    """Write the final record and drop the pending one."""
    write_json(record_path(book, key), record)
    pending_path(book, key).unlink(missing_ok=True)


def external_states(
    paths: list[Path], folder: Path, known: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Size, mtime and digest of each external file, by its name relative to ``folder``.

    A file whose size and mtime match ``known`` keeps its recorded digest (not hashed again).
    Files that do not exist are left out: the stage reports them on the rows that need them.
    """
    states: dict[str, dict[str, Any]] = {}
    for path in paths:
        name = _relative(path, folder)
        previous = FileState.from_dict((known or {}).get(name))
        try:
            stat = path.stat()
        except OSError:
            continue
        now = current_digest(path, previous)
        if now is None:
            continue
        states[name] = FileState(stat.st_size, stat.st_mtime_ns, now).to_dict()
    return states


def external_change(record: dict[str, Any], folder: Path) -> str | None:
    """The first recorded external file that changed or vanished since, as a reason, or None."""
    for name, state in (record.get("external") or {}).items():
        known = FileState.from_dict(state)
        path = Path(name) if Path(name).is_absolute() else folder / name
        now = current_digest(path, known)
        if now is None:
            return f"{name} is gone"
        if known is None or now != known.digest:
            return f"{name} changed"
    return None


def refreshed_record(
    record: dict[str, Any], in_path: Path, out_path: Path, folder: Path
) -> dict[str, Any] | None:
    """``record`` with the new size and mtime of every file whose content was just confirmed
    unchanged (a touched or copied folder), or None when nothing moved: the next check of an
    up-to-date stage then costs a stat, not a read of the file."""
    updated = dict(record)
    changed = False
    for name, path in (("input", in_path), ("output", out_path)):
        state = confirmed_state(path, FileState.from_dict(record.get(name)))
        if state is not None:
            updated[name] = {**record[name], **state.to_dict()}
            changed = True
    external = dict(record.get("external") or {})
    for name, known in external.items():
        path = Path(name) if Path(name).is_absolute() else folder / name
        state = confirmed_state(path, FileState.from_dict(known))
        if state is not None:
            external[name] = state.to_dict()
            changed = True
    if external:
        updated["external"] = external
    return updated if changed else None


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to the data folder when inside it (moving the folder keeps records)."""
    try:
        return Path(path).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): value}


def fingerprint_changes(recorded: Any, current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(endpoint changes, other changes) between recorded and current fingerprint parts.

    Each is a short phrase: "code of stages.sql.masking", "parameter timeout",
    "model endpoint: recorded http://a, now http://b". Without recorded parts (a record
    written before they were kept) the answer is one generic phrase.
    """
    if not isinstance(recorded, dict):
        return [], ["stage code or parameters"]
    old, new = _flatten(recorded), _flatten(current)
    endpoint: list[str] = []
    other: list[str] = []
    modules: list[str] = []
    settings: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key, None) == new.get(key, None) and (key in old) == (key in new):
            continue
        head, _, rest = key.partition(".")
        if key.endswith("base_url"):
            endpoint.append(f"model endpoint: recorded {old.get(key)}, now {new.get(key)}")
        elif head == "code":
            modules.append(rest)
        elif head == "version":
            other.append("stage version")
        elif head in ("source", "class"):
            other.append("code of the stage class")
        elif head == "params":
            other.append(f"parameter {rest.split('.')[0]}")
        elif key.startswith("extra.template"):
            other.append("prompt template")
        elif key.startswith("extra.config."):
            other.append(f"setting {key.removeprefix('extra.config.')}")
        elif key.startswith("extra.function"):
            other.append(_function_change(key.removeprefix("extra.function").lstrip(".")))
        elif key.startswith("extra.model"):
            settings.append(key.removeprefix("extra.model.").split(".")[0])
        else:
            other.append(key)
    if modules:
        shown = ", ".join(modules[:3]) + (
            f" and {len(modules) - 3} more" if len(modules) > 3 else ""
        )
        other.insert(0, f"code of {shown}")
    if settings:
        other.append(f"model settings ({', '.join(dict.fromkeys(settings))})")
    return endpoint, list(dict.fromkeys(other))


def _function_change(rest: str) -> str:
    """A phrase for a change inside a function's fingerprint (see `function_fingerprint`):
    its code, a name it uses, a value it captured."""
    parts = rest.split(".")
    for index, part in enumerate(parts):
        if part == "uses" and index + 1 < len(parts):
            return f"code of {parts[index + 1]} (used by the function)"
        if part == "captured" and index + 1 < len(parts):
            return f"captured value {parts[index + 1]}"
    return "code of the function"
