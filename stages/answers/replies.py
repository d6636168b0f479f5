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


_STATEMENT = re.compile(
    r"(?i)^\s*\(?\s*(SELECT|WITH|INSERT|UPDATE|DELETE|DROP|CREATE|ALTER|ATTACH|DETACH|PRAGMA"
    r"|REPLACE|VALUES|EXPLAIN)\b"
)
_STATEMENT_LINE = re.compile(r"(?im)^[ \t]*\(?[ \t]*(SELECT|WITH)\b")


def _is_statement(text: str) -> bool:
    return bool(_STATEMENT.match(text))


def parse_sql_reply(text: str) -> str:
    """The SQL of a reply as real models write it: the LAST ```sql fence (models often show a
    draft first), else the last unlabelled fence holding a statement, else the text after a
    `SQL:` label, else the last statement starting a line. Trailing semicolons removed.

    A reply with no SQL in it ("I am not sure how to answer that.") raises ReplyParseError:
    it is a failed call, never the row's SQL.
    """
    labelled = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("sql", "sqlite")]
    others = [
        body
        for lang, body in _FENCE.findall(text)
        if lang.lower() not in ("sql", "sqlite") and _is_statement(body)
    ]
    if labelled:
        sql = labelled[-1]
    elif others:
        sql = others[-1]
    else:
        m = re.search(r"(?im)^\s*sql\s*:\s*", text)
        if m and _is_statement(text[m.end() :]):
            sql = text[m.end() :]
        else:
            starts = list(_STATEMENT_LINE.finditer(text))
            if starts:
                sql = text[starts[-1].start() :]
                sql = re.split(r"\n\s*\n", sql, maxsplit=1)[0]
                sql = sql.split(";")[0]
            elif _is_statement(text):
                sql = text
            else:
                raise ReplyParseError(f"no SQL in reply: {text.strip()[:80]!r}")
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
