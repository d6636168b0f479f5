"""Reading model replies as real models write them, and rendering replies in that same form.

The parsers are tolerant of prose around the answer (JSON possibly in a ```json fence, SQL in
```sql); the `render_*` functions write what a perfect model would reply, for the oracle.
"""

from __future__ import annotations

import json
import re
from typing import Any


class ReplyParseError(ValueError):
    """A model reply could not be read as the expected JSON or SQL."""


def render_json_reply(data: Any) -> str:
    """Reply text carrying JSON the way chat models do: inside a ```json fence."""
    return "```json\n" + json.dumps(data, indent=2, ensure_ascii=False) + "\n```"


def render_sql_reply(sql: str) -> str:
    """Reply text carrying SQL inside a ```sql fence."""
    return "```sql\n" + sql.strip() + "\n```"


def render_detect_values_reply(values: list[dict[str, Any]]) -> str:
    """DetectValues reply: a JSON list of the value words of the question."""
    return render_json_reply([v["surface"] for v in values])


def render_link_values_reply(values: list[dict[str, Any]]) -> str:
    """LinkValues reply: a JSON object value words -> "table.column"."""
    return render_json_reply({v["surface"]: v["column"] for v in values})


def render_schema_links_reply(links: dict[str, str]) -> str:
    """LinkSchema reply: a JSON object question term -> "table" / "table.column"."""
    return render_json_reply(links)


def render_schema_items_reply(items: dict[str, list[str]]) -> str:
    """RankSchemaItems reply: a JSON object table -> [columns]."""
    return render_json_reply(items)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.DOTALL)


def _fenced(text: str, langs: tuple[str, ...]) -> list[str]:
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    preferred = [body for lang, body in blocks if lang in langs]
    return preferred + [body for lang, body in blocks if lang not in langs]


def parse_json_reply(text: str) -> Any:
    """The JSON value in a reply: a fenced block, the whole text, or the first balanced {...}/[...].

    Raises ReplyParseError when nothing parses.
    """
    for chunk in [*_fenced(text, ("json", "")), text]:
        chunk = chunk.strip()
        try:
            return json.loads(chunk)
        except ValueError:
            pass
        value = _first_balanced(chunk)
        if value is not None:
            return value
    raise ReplyParseError(f"no JSON found in reply: {text[:80]!r}")


def _first_balanced(text: str) -> Any:
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        return value
    return None


def parse_sql_reply(text: str) -> str:
    """The SQL in a reply: the ```sql fence (or any fence), else the text after a `SQL:` label,
    else the whole text; trailing semicolons and whitespace removed. ReplyParseError if empty.
    """
    blocks = _fenced(text, ("sql", "sqlite"))
    if blocks:
        sql = blocks[0]
    else:
        m = re.search(r"(?im)^\s*sql\s*:\s*", text)
        sql = text[m.end() :] if m else text
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise ReplyParseError("empty SQL in reply")
    return sql


def parse_list_reply(text: str) -> list[Any]:
    """A JSON list from a reply (an object's values if the model wrapped it in one)."""
    value = parse_json_reply(text)
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 else list(value.values())
    if not isinstance(value, list):
        raise ReplyParseError(f"expected a JSON list, got {type(value).__name__}")
    return value


def parse_object_reply(text: str) -> dict[str, Any]:
    """A JSON object from a reply (a list of [key, value] pairs is accepted too)."""
    value = parse_json_reply(text)
    if isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        value = {str(k): v for k, v in value}
    if not isinstance(value, dict):
        raise ReplyParseError(f"expected a JSON object, got {type(value).__name__}")
    return value
