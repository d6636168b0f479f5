"""A lossless SQLite tokenizer with character spans, plus quoting helpers for names and values.

Joining the texts of `tokenize(sql)` gives `sql` back exactly, so rewriting passes
(masking, unmasking) can replace single tokens and leave every other byte alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Token kinds."""

    WS = "ws"
    COMMENT = "comment"
    STRING = "string"  # '...' with '' escapes (also X'..' blobs)
    QIDENT = "qident"  # "..." `...` [...]
    NUMBER = "number"
    WORD = "word"  # keywords and bare identifiers
    PARAM = "param"  # ? ?1 :name @name $name
    OP = "op"  # operators and punctuation


@dataclass(frozen=True)
class Token:
    """One token: its kind, exact text and [start, end) character span in the input."""

    kind: Kind
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        """The text in upper case (for keyword tests)."""
        return self.text.upper()

    @property
    def is_name(self) -> bool:
        """A bare word or a quoted identifier."""
        return self.kind in (Kind.WORD, Kind.QIDENT)

    @property
    def name(self) -> str:
        """The identifier it denotes: quotes removed and doubled quotes undone."""
        return unquote_identifier(self.text) if self.kind == Kind.QIDENT else self.text


_OPS = ("->>", "||", "<=", ">=", "<>", "!=", "==", "<<", ">>", "->")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WORD = re.compile(r"[^\W\d]\w*|\$\w*|\w+")  # unicode letters, digits, _
_WS = re.compile(r"\s+")
_PARAM = re.compile(r"\?\d*|[:@$][^\W\d]\w*")


def tokenize(sql: str) -> list[Token]:
    """Split `sql` into tokens covering every character; never raises (unterminated runs to end)."""
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        kind: Kind
        if ch.isspace():
            m = _WS.match(sql, i)
            end = m.end() if m else i + 1
            kind = Kind.WS
        elif sql.startswith("--", i):
            nl = sql.find("\n", i)
            end = n if nl < 0 else nl
            kind = Kind.COMMENT
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
            kind = Kind.COMMENT
        elif ch == "'" or (ch in "xX" and sql.startswith("'", i + 1)):
            end = _quoted_end(sql, i + (1 if ch != "'" else 0), "'")
            kind = Kind.STRING
        elif ch in '"`':
            end = _quoted_end(sql, i, ch)
            kind = Kind.QIDENT
        elif ch == "[":
            close = sql.find("]", i + 1)
            end = n if close < 0 else close + 1
            kind = Kind.QIDENT
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            m = _NUMBER.match(sql, i)
            end = m.end() if m and m.end() > i else i + 1
            kind = Kind.NUMBER
            # "1abc" is not a number followed by a word in SQLite; keep it one token
            w = _WORD.match(sql, end)
            if w and end < n and (sql[end].isalpha() or sql[end] == "_"):
                end = w.end()
                kind = Kind.WORD
        elif ch in "?:@$" and (m := _PARAM.match(sql, i)) and (ch == "?" or m.end() > i + 1):
            end = m.end()
            kind = Kind.PARAM
        elif ch.isalpha() or ch == "_" or (ord(ch) > 127 and ch.isalnum()):
            m = _WORD.match(sql, i)
            end = m.end() if m else i + 1
            kind = Kind.WORD
        else:
            end = i + 1
            for op in _OPS:
                if sql.startswith(op, i):
                    end = i + len(op)
                    break
            kind = Kind.OP
        tokens.append(Token(kind, sql[i:end], i, end))
        i = end
    return tokens


def _quoted_end(sql: str, start: int, quote: str) -> int:
    """End index of the quoted run opening at `start`; a doubled quote is an escape."""
    i = start + 1
    while True:
        j = sql.find(quote, i)
        if j < 0:
            return len(sql)
        if sql.startswith(quote * 2, j):
            i = j + 2
            continue
        return j + 1


def significant(tokens: list[Token]) -> list[Token]:
    """The tokens without whitespace and comments."""
    return [t for t in tokens if t.kind not in (Kind.WS, Kind.COMMENT)]


def untokenize(tokens: list[Token]) -> str:
    """Concatenate token texts (the inverse of `tokenize`)."""
    return "".join(t.text for t in tokens)


def unquote_identifier(text: str) -> str:
    """Undo identifier quoting: double quotes, backticks or brackets; doubled quotes unescaped."""
    if len(text) >= 2:
        if text[0] == "[" and text[-1] == "]":
            return text[1:-1]
        if text[0] in '"`' and text[-1] == text[0]:
            q = text[0]
            return text[1:-1].replace(q + q, q)
    return text


def unquote_string(text: str) -> str:
    """`'O''Brien'` -> `O'Brien` (text of a STRING token)."""
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


def quote_string(value: str) -> str:
    """A SQL string literal for `value`, doubling single quotes."""
    return "'" + value.replace("'", "''") + "'"


def format_value(value: object) -> str:
    """A SQL literal for `value`: numbers bare, NULL for None, everything else a quoted string."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return quote_string(str(value))


_PLAIN = re.compile(r"[^\W\d]\w*")


def quote_identifier(name: str) -> str:
    """`name` ready for SQL: bare if it is a plain non-keyword word, else double-quoted."""
    if _PLAIN.fullmatch(name) and name.upper() not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


# SQLite keywords (https://sqlite.org/lang_keywords.html).
KEYWORDS = frozenset(
    """ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE
    BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE
    CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE
    DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE
    EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS
    HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS
    ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL
    NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY
    RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING
    RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION
    TRIGGER UNBOUNDED UNION UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH
    WITHOUT""".split()  # noqa: SIM905
)

# Keywords that can never be a table or column name in a query we rewrite; other SQLite
# keywords (KEY, MATCH, YEAR-like words ...) are treated as names when the schema has them.
STRUCTURAL = frozenset(
    """ALL AND AS ASC BETWEEN BY CASE CAST CROSS DESC DISTINCT ELSE END EXCEPT EXISTS FROM FULL
    GLOB GROUP HAVING IN INNER INTERSECT IS ISNULL JOIN LEFT LIKE LIMIT NATURAL NOT NOTNULL NULL
    OFFSET ON OR ORDER OUTER RIGHT SELECT THEN UNION USING VALUES WHEN WHERE WITH""".split()  # noqa: SIM905
)


class Role(StrEnum):
    """What a name token means in its query."""

    TABLE = "table"  # a table in FROM/JOIN position
    QUALIFIER = "qualifier"  # `x` in `x.col` that is not an alias: a table name
    COLUMN = "column"  # a column reference (bare or after `x.`)
    ALIAS_DEF = "alias_def"  # defines a table/column alias or a CTE name
    ALIAS_REF = "alias_ref"  # uses an alias defined in the same query
    FUNCTION = "function"  # a name followed by `(`
    TYPE = "type"  # the type in CAST(x AS type)
    KEYWORD = "keyword"


@dataclass
class NameRefs:
    """Roles of the name tokens of one query, by token index, and what its aliases stand for."""

    roles: dict[int, Role]
    aliases: set[str]  # lower-cased alias and CTE names
    alias_tables: dict[str, str]  # lower alias -> table name as written
    ctes: set[str]


_CLAUSES = {
    "SELECT": "SELECT",
    "FROM": "FROM",
    "JOIN": "FROM",
    "WHERE": "WHERE",
    "GROUP": "GROUP",
    "ORDER": "ORDER",
    "HAVING": "HAVING",
    "LIMIT": "LIMIT",
    "OFFSET": "LIMIT",
    "ON": "ON",
    "USING": "ON",
    "UNION": None,
    "EXCEPT": None,
    "INTERSECT": None,
    "WITH": "WITH",
    "WINDOW": "WINDOW",
}


def name_refs(tokens: list[Token], is_name: Callable[[str], bool] = lambda _: False) -> NameRefs:
    """Assign a `Role` to every name token of `tokens` (indices into `tokens`).

    `is_name(text)` says whether a word that is also a (non-structural) SQLite keyword is a
    table or column name in this database. Aliases: `x AS a`, `x a` after a table or
    expression, and `WITH a AS (...)`; references to them are ALIAS_REF, except that a bare
    name that `is_name` accepts stays a COLUMN (real names win over column aliases).
    """
    sig = [i for i, t in enumerate(tokens) if t.kind not in (Kind.WS, Kind.COMMENT)]
    roles: dict[int, Role] = {}
    clause: str | None = None
    stack: list[tuple[str | None, str | None]] = []  # (function word, saved clause)

    def tok(k: int) -> Token | None:
        return tokens[sig[k]] if 0 <= k < len(sig) else None

    def is_op(t: Token | None, text: str) -> bool:
        return t is not None and t.kind == Kind.OP and t.text == text

    def is_kw(t: Token | None, *words: str) -> bool:
        return t is not None and t.kind == Kind.WORD and t.upper in words

    def name_like(t: Token) -> bool:
        if t.kind == Kind.QIDENT:
            return True
        if t.kind != Kind.WORD:
            return False
        up = t.upper
        if up in STRUCTURAL:
            return False
        return up not in KEYWORDS or bool(is_name(t.text))

    aliases: set[str] = set()
    ctes: set[str] = set()
    alias_tables: dict[str, str] = {}
    for k, idx in enumerate(sig):
        t = tokens[idx]
        prev, nxt = tok(k - 1), tok(k + 1)
        if is_op(t, "("):
            fn = prev.upper if prev is not None and prev.kind == Kind.WORD else None
            stack.append((fn, clause))
            clause = None
            continue
        if is_op(t, ")"):
            if stack:
                clause = stack.pop()[1]
            continue
        if t.kind not in (Kind.WORD, Kind.QIDENT):
            continue
        if not name_like(t):
            if t.kind == Kind.WORD and t.upper in _CLAUSES:
                clause = _CLAUSES[t.upper]
            roles[idx] = Role.KEYWORD
            continue
        in_cast = bool(stack) and stack[-1][0] == "CAST"
        role: Role
        if t.kind == Kind.WORD and is_op(nxt, "(") and not (clause == "WITH" and _cte_start(prev)):
            role = Role.FUNCTION
        elif is_op(prev, "."):
            role = Role.COLUMN
        elif is_op(nxt, "."):
            role = Role.QUALIFIER
        elif is_kw(prev, "AS"):
            role = Role.TYPE if in_cast else Role.ALIAS_DEF
        elif clause == "WITH" and _cte_start(prev):
            role = Role.ALIAS_DEF
            ctes.add(t.name.lower())
        elif clause == "FROM" and (is_kw(prev, "FROM", "JOIN") or is_op(prev, ",")):
            role = Role.TABLE
        elif prev is not None and (
            roles.get(sig[k - 1]) in (Role.TABLE, Role.COLUMN)
            or is_op(prev, ")")
            or prev.kind in (Kind.STRING, Kind.NUMBER)
        ):
            role = Role.ALIAS_DEF
        else:
            role = Role.COLUMN
        if role == Role.ALIAS_DEF:
            if clause != "FROM" and is_name(t.name) and t.name.lower() not in ctes:
                role = Role.COLUMN  # a column alias spelled like a real column: keep as a name
            else:
                aliases.add(t.name.lower())
                base_idx = sig[k - 2] if is_kw(prev, "AS") else sig[k - 1]
                if roles.get(base_idx) == Role.TABLE:
                    alias_tables[t.name.lower()] = tokens[base_idx].name
        roles[idx] = role
    for idx, role in list(roles.items()):
        low = tokens[idx].name.lower()
        if low not in aliases:
            continue
        is_alias = role == Role.QUALIFIER or (role == Role.TABLE and low in ctes)
        if is_alias or (role == Role.COLUMN and not is_name(tokens[idx].name)):
            roles[idx] = Role.ALIAS_REF
    return NameRefs(roles, aliases, alias_tables, ctes)


def _cte_start(prev: Token | None) -> bool:
    return prev is not None and (
        (prev.kind == Kind.WORD and prev.upper in ("WITH", "RECURSIVE"))
        or (prev.kind == Kind.OP and prev.text == ",")
    )
