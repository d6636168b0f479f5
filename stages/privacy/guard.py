"""The privacy guard: a deterministic local pass that no llm prompt part can skip.

Whatever the small model found or missed, every text bound for the remote model goes through
`RowGuard.mask` (or, in `block` mode, `RowGuard.enforce`): it finds the names of the row's
database (every table and column, kept by ranking or not, as written and in natural-language
forms: `home_town`, "home town", plurals), its text cells (through the `ValueIndex`), the
numbers the policy covers and quoted strings, and replaces each with a symbol of the row's
symbol table: the existing one when the small model's work already made it, else a fresh
T#/C#/V#. Masked schema items the ranking dropped are added back to the kept schema, so the
symbolic schema shows them and `unmask_sql` restores them like any other symbol.

`mask` works on any text (question, BIRD-style evidence, a SQL draft); the rules of what counts
as a mention live in `stages.privacy.text`, shared with the leak audit. Every text is made
`visible` (NFKC, invisible characters removed) first: that form is scanned, masked and sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from masksql_pipe.errors import ConfigError
from stages.privacy.text import (
    DATE,
    NUMBER,
    PATTERN_VALUE,
    QUOTED,
    STOP_WORDS,
    digit_count,
    normalize,
    number_value,
    phrases,
    symbol_spans,
    visible,
)
from stages.privacy.value_index import Cell, ValueIndex
from stages.sql.masking import symbolic_schema
from stages.sql.names import name_variants
from stages.sql.schema import Schema, parse_type, type_secrets
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import KEYWORDS

MODES = ("mask", "block")

SQL_FUNCTIONS = frozenset(
    """ABS AVG COALESCE COUNT DATE DATETIME GROUP_CONCAT IFNULL INSTR JULIANDAY LENGTH LOWER
    MAX MIN NULLIF REPLACE ROUND STRFTIME SUBSTR SUBSTRING SUM TIME TOTAL TRIM TYPEOF UPPER
    IIF""".split()  # noqa: SIM905
)
"""Function names that are not counted as names in SQL text (a column called `count`...)."""

_PRIORITY = {"value": 0, "quoted": 1, "pattern": 2, "date": 3, "name": 4, "number": 5}


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard masks and what it does when it had to step in.

    mode: `mask` (default: mask what the small model missed) or `block` (the row fails before
    any prompt is sent). number_digits: numbers with at least this many digits are masked (1:
    every number; 2: years, amounts and other multi-digit numbers). min_value_length: database
    cells shorter than this many characters are not matched (a cell "a" is not a secret;
    "B+" is). Words the question gives as a LIKE pattern ("starts with Mar") and dates are
    always masked.
    """

    mode: str = "mask"
    number_digits: int = 1
    min_value_length: int = 2

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> GuardPolicy:
        """The policy from the `privacy` settings; ConfigError naming the bad one."""
        settings = dict(settings or {})
        mode = settings.get("guard", "mask")
        if mode not in MODES:
            raise ConfigError(f"setting 'privacy.guard' must be 'mask' or 'block', got {mode!r}")
        numbers = settings.get("number_digits", 1)
        length = settings.get("min_value_length", 2)
        for key, value in (("number_digits", numbers), ("min_value_length", length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"setting 'privacy.{key}' must be an integer >= 1, got {value!r}")
        return cls(mode, numbers, length)

    def to_dict(self) -> dict[str, Any]:
        """As the `privacy` settings spell it."""
        return {
            "guard": self.mode,
            "number_digits": self.number_digits,
            "min_value_length": self.min_value_length,
        }


@dataclass(frozen=True)
class Finding:
    """One sensitive mention the guard found: its kind, the text, the symbol that replaced it."""

    kind: str  # name | value | number | quoted | pattern | date
    text: str
    symbol: str | None = None
    item: str | None = None  # "table" or "table.column" it belongs to, when known

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data for the row."""
        return {"kind": self.kind, "text": self.text, "symbol": self.symbol, "item": self.item}


class GuardBlocked(ValueError):
    """`privacy.guard: block` and a text bound for the remote model still carries real data."""


@dataclass
class _Span:
    start: int
    end: int
    kind: str
    payload: Any


@dataclass
class NameForms:
    """Every natural-language form of a schema's names (keys: `normalize`d), compiled to one
    regex (cached); `name_matches` also finds forms by their normalised phrase."""

    items: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    pattern: re.Pattern[str] | None = None


_NAME_FORMS: dict[tuple[str, int], NameForms] = {}


def name_forms(schema: Schema) -> NameForms:
    """Normalised form -> (table, column or None) for every table and column of `schema`."""
    key = (schema.db_id, id(schema))
    forms = _NAME_FORMS.get(key)
    if forms is not None:
        return forms
    forms = NameForms()
    written: set[str] = set()
    for table in schema.tables:
        for form in name_variants(table.name):
            forms.items.setdefault(normalize(form), (table.name, None))
            written.add(visible(form).lower())
    for table in schema.tables:
        for column in table.columns:
            for form in name_variants(column.name):
                forms.items.setdefault(normalize(form), (table.name, column.name))
                written.add(visible(form).lower())
    usable = [f for f in {*forms.items, *written} if f.strip() and normalize(f) not in STOP_WORDS]
    if usable:
        alternation = "|".join(re.escape(f) for f in sorted(usable, key=lambda f: (-len(f), f)))
        forms.pattern = re.compile(r"(?<!\w)(?:" + alternation + r")(?!\w)", re.IGNORECASE)
    _NAME_FORMS[key] = forms
    return forms


def name_matches(forms: NameForms, text: str) -> list[tuple[int, int, tuple[str, str | None]]]:
    """Spans of schema-name forms in `text` (a `visible` text): by the regex (case-insensitive,
    as written) and by normalised phrase (full case folding, mixed-script look-alikes)."""
    found: list[tuple[int, int, tuple[str, str | None]]] = []
    if forms.pattern is not None:
        for m in forms.pattern.finditer(text):
            item = forms.items.get(normalize(m.group(0)))
            if item is not None:
                found.append((m.start(), m.end(), item))
    extra = [(a, b, n) for a, b, n in phrases(text) if n in forms.items and n not in STOP_WORDS]
    for start, end, norm in sorted(extra, key=lambda p: (p[0] - p[1], p[0])):
        if not any(start < b and a < end for a, b, _ in found):
            found.append((start, end, forms.items[norm]))
    return sorted(found)


class RowGuard:
    """The guard for one row: its full schema, kept schema, symbol table and value index.

    `kept` ({table: [columns]}, as AddFilteredSchema writes it) and `symbols` are updated in
    place when masking needs a schema item the ranking dropped or a fresh value symbol;
    `changed` says so, and the caller writes them back to the row.
    """

    def __init__(
        self,
        schema: Schema,
        kept: Mapping[str, list[str]],
        symbols: SymbolTable,
        index: ValueIndex | None,
        policy: GuardPolicy | None = None,
        allowed_values: Iterable[str] = (),
    ) -> None:
        self.schema = schema
        self.kept = {str(t): list(c) for t, c in kept.items()}
        self.symbols = symbols
        self.index = index
        self.policy = policy or GuardPolicy()
        self.allowed_values = frozenset(normalize(v) for v in allowed_values)
        """Values the `category` policy lets through (not a sensitive category): never masked
        or flagged, whatever kind the guard takes them for. Names are masked regardless."""
        self.changed = False
        self.findings: list[Finding] = []
        self._cells: dict[str, bool] = {}

    # -- finding --------------------------------------------------------------------------------

    def scan(self, text: str, *, sql: bool = False) -> list[_Span]:
        """Sensitive spans of `text`, longest first when they overlap, never inside a symbol.

        With `sql`, SQL keywords and function names are not taken for schema names, and quoted
        text is not masked as a whole. `text` must be `visible` (spans are offsets into it).
        """
        taken = [(a, b) for a, b in symbol_spans(text)]
        candidates: list[_Span] = []
        for m in [] if sql else QUOTED.finditer(text):
            # in SQL text, quotes are the model's own literals and identifiers, and SQLite's
            # messages quote keywords (`near "NULL"`): names and values there are still found
            group = next(g for g in (1, 2, 3) if m.group(g) is not None)
            inner = m.group(group).strip()
            if inner:
                candidates.append(_Span(m.start(group), m.end(group), "quoted", m.group(group)))
        if self.index is not None:
            wanted: dict[str, list[tuple[int, int]]] = {}
            for start, end, norm in phrases(text):
                if len(norm) >= self.policy.min_value_length and norm not in STOP_WORDS:
                    wanted.setdefault(norm, []).append((start, end))
            for norm, cells in self.index.lookup(wanted).items():
                for start, end in wanted[norm]:
                    candidates.append(_Span(start, end, "value", cells))
        for start, end, item in name_matches(name_forms(self.schema), text):
            word = text[start:end]
            if sql and (word.upper() in KEYWORDS or word.upper() in SQL_FUNCTIONS):
                continue
            candidates.append(_Span(start, end, "name", item))
        for m in PATTERN_VALUE.finditer(text):
            group = 1 if m.group(1) is not None else 2
            candidates.append(_Span(m.start(group), m.end(group), "pattern", m.group(group)))
        for m in DATE.finditer(text):
            candidates.append(_Span(m.start(), m.end(), "date", m.group(0)))
        for m in NUMBER.finditer(text):
            if digit_count(m.group(0)) >= self.policy.number_digits:
                candidates.append(_Span(m.start(), m.end(), "number", m.group(0)))
        if self.allowed_values:
            candidates = [
                s
                for s in candidates
                if s.kind == "name" or normalize(text[s.start : s.end]) not in self.allowed_values
            ]
        candidates.sort(key=lambda s: (-(s.end - s.start), _PRIORITY[s.kind], s.start))
        chosen: list[_Span] = []
        for span in candidates:
            if any(span.start < b and a < span.end for a, b in taken):
                continue
            taken.append((span.start, span.end))
            chosen.append(span)
        return sorted(chosen, key=lambda s: s.start)

    def name_spans(self, text: str) -> list[tuple[int, int]]:
        """Spans of schema-name forms in `text` (a `visible` text)."""
        return [(a, b) for a, b, _ in name_matches(name_forms(self.schema), text)]

    def findings_in(self, text: str, *, sql: bool = False) -> list[Finding]:
        """What `text` (made `visible`) carries that the remote model must not see (symbols are
        not assigned)."""
        text = visible(text)
        return [Finding(s.kind, text[s.start : s.end]) for s in self.scan(text, sql=sql)]

    def is_value(self, phrase: str) -> bool:
        """Whether `phrase` is a text cell of the row's database (as the scan matches cells)."""
        norm = normalize(phrase)
        if self.index is None or len(norm) < self.policy.min_value_length:
            return False
        if norm in STOP_WORDS or norm in self.allowed_values:
            return False
        if norm not in self._cells:
            self._cells[norm] = bool(self.index.lookup([norm]))
        return self._cells[norm]

    def schema_problems(self, text: str) -> list[str]:
        """`symbolic_schema_problems` of `text` against the full schema and its cells."""
        return symbolic_schema_problems(text, self.schema, self.is_value)

    def render_schema(self, *, cells: bool = True) -> str:
        """The symbolic schema of the kept schema: no declared type naming a name (or, with
        `cells`, a cell of the database) is shown as declared."""
        hidden = self.is_value if cells else None
        return symbolic_schema(self.kept_schema(), self.symbols, names=self.schema, hidden=hidden)

    # -- masking --------------------------------------------------------------------------------

    def mask(self, text: str, *, sql: bool = False) -> str:
        """`text`, made `visible`, with every sensitive span replaced by its symbol (recorded in
        `findings`)."""
        text = visible(text)
        out: list[str] = []
        last = 0
        for span in self.scan(text, sql=sql):
            found = text[span.start : span.end]
            symbol, item = self._symbol_for(span, found)
            self.findings.append(Finding(span.kind, found, symbol, item))
            out.append(text[last : span.start])
            out.append(symbol)
            last = span.end
        out.append(text[last:])
        return "".join(out)

    def enforce(self, text: str, where: str, *, sql: bool = False) -> str:
        """`mask` in mask mode; in block mode, GuardBlocked when `text` carries anything.
        Either way the text returned (the one to send) is `visible`."""
        text = visible(text)
        if self.policy.mode == "block":
            found = self.findings_in(text, sql=sql)
            if found:
                kinds = sorted({f.kind for f in found})
                raise GuardBlocked(
                    f"privacy guard (block): the {where} still carries {len(found)} sensitive "
                    f"item(s) ({', '.join(kinds)}) the small model did not mask; prompt not sent"
                )
            return text
        return self.mask(text, sql=sql)

    def _symbol_for(self, span: _Span, found: str) -> tuple[str, str | None]:
        if span.kind == "name":
            table, column = span.payload
            if column is None:
                self._grow(table, None)
                return self.symbols.add_table(self._real_table(table)), table
            table = self.keep_column(table, column)
            return self.symbols.add_column(column), f"{table}.{column}"
        if span.kind == "value":
            cell = self._pick_cell(span.payload)
            self._grow(cell.table, cell.column)
            self.changed = True
            return self.symbols.add_value(cell.value, cell.item, found), cell.item
        if span.kind == "number":
            self.changed = True
            return self.symbols.add_value(number_value(found), None, found), None
        existing = self.symbols.symbol_for_surface(found)
        if existing:
            return existing, None
        self.changed = True
        return self.symbols.add_value(found, None, found), None

    def _real_table(self, table: str) -> str:
        tab = self.schema.table(table)
        return tab.name if tab else table

    def table_for_column(self, table: str, column: str) -> str:
        """A kept table that has `column`, else the first table of the schema with it."""
        kept_lower = {t.lower() for t in self.kept}
        owners = self.schema.tables_with_column(column)
        for owner in owners:
            if owner.name.lower() in kept_lower:
                return owner.name
        return owners[0].name if owners else table

    def _pick_cell(self, cells: list[Cell]) -> Cell:
        kept_lower = {t.lower(): [c.lower() for c in cols] for t, cols in self.kept.items()}
        for cell in cells:
            if cell.column.lower() in kept_lower.get(cell.table.lower(), []):
                return cell
        for cell in cells:
            if self.schema.column(cell.table, cell.column) is not None:
                return cell
        return cells[0]

    def keep_column(self, table: str, column: str) -> str:
        """Keep column `column` in every kept table that has it (one C# stands for the name in
        all of them, so the remote model may use it with any), else in the first table of the
        schema that has it; returns the table it was meant for."""
        kept_lower = {t.lower() for t in self.kept}
        owners = [
            t.name for t in self.schema.tables_with_column(column) if t.name.lower() in kept_lower
        ]
        chosen = self.table_for_column(table, column)
        for owner in owners or [chosen]:
            self._grow(owner, column)
        return chosen

    def keep_item(self, item: str) -> None:
        """Keep a schema item ("table" or "table.column") the small model linked to."""
        table_name, _, column_name = item.partition(".")
        table = self.schema.table(table_name.strip())
        if table is None:
            return
        column = table.column(column_name.strip()) if column_name else None
        if column is not None:
            self._grow(table.name, column.name)
        elif not column_name:
            self._grow(table.name, None)

    def _grow(self, table: str, column: str | None) -> None:
        """Keep `table` (and `column`) in the kept schema and give every kept item a symbol."""
        tab = self.schema.table(table)
        if tab is None:
            return
        kept_name = next((t for t in self.kept if t.lower() == tab.name.lower()), None)
        if kept_name is None:
            first = [c.name for c in tab.columns[:1]]
            self.kept[tab.name] = list(tab.primary_keys) or first
            kept_name = tab.name
            self.changed = True
        cols = self.kept[kept_name]
        col = tab.column(column) if column else None
        if col is not None and col.name.lower() not in (c.lower() for c in cols):
            cols.append(col.name)
            self.changed = True
        if self.changed:
            self._sync_symbols()

    def kept_schema(self) -> Schema:
        """The (possibly grown) kept schema."""
        return self.schema.filter(self.kept)

    def _sync_symbols(self) -> None:
        kept = self.kept_schema()
        for tab in kept.tables:
            self.symbols.add_table(tab.name)
        for tab in kept.tables:
            for col in tab.columns:
                self.symbols.add_column(col.name)

    def filtered_schema(self) -> dict[str, list[str]]:
        """The kept schema as AddFilteredSchema writes `filtered_schema`."""
        return {t.name: [c.name for c in t.columns] for t in self.kept_schema().tables}


SCHEMA_WORDS = frozenset({"primary", "key", "foreign", "keys", "values", "a", "value", "of"})
"""The fixed words of a symbolic schema (besides symbols and column types)."""

_SYMBOL = re.compile(r"(?<!\w)[TCV][1-9]\d*(?!\w)")
_ITEM = r"T[1-9]\d*\.C[1-9]\d*"
_TABLE_LINE = re.compile(r"T[1-9]\d*\((.*)\)")
_STRUCTURE_LINES = (
    re.compile(r"Foreign keys:"),
    re.compile(r"Values:"),
    re.compile(rf"{_ITEM} = {_ITEM}"),
    re.compile(rf"V[1-9]\d*: a value(?: of {_ITEM}(?: or {_ITEM})*)?"),
)
_COLUMN_SPEC = re.compile(r"C[1-9]\d*(?:\s+(.*?))?(?:\s*(?<!\w)(?i:primary\s+key))?")


def symbolic_schema_problems(
    text: str, schema: Schema, is_value: Callable[[str], bool] | None = None
) -> list[str]:
    """The words of a symbolic schema that break its structure or name something real.

    Read line by line as `symbolic_schema` writes it: `T#(C# type [primary key], ...)`,
    `Foreign keys:`, `T#.C# = T#.C#`, `Values:`, `V#: a value [of T#.C#]`. A type must follow
    SQLite's type grammar and no run of its words may be a name of `schema` or (`is_value`) a
    cell of its database. A line of any other shape gives its non-symbol words (or itself).
    """
    odd: list[str] = []

    def secret(phrase: str) -> bool:
        return schema.is_name(phrase) or bool(is_value and is_value(phrase))

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or any(p.fullmatch(line) for p in _STRUCTURE_LINES):
            continue
        table = _TABLE_LINE.fullmatch(line)
        specs = _split_specs(table.group(1)) if table else None
        if specs is None:
            odd.extend(_stray_words(line, f"line {number}"))
            continue
        for spec in specs:
            odd.extend(_spec_problems(spec, secret, number))
    return sorted(set(odd))


def _split_specs(inner: str) -> list[str] | None:
    """The column specs of a table line, split at commas outside parentheses (None: unbalanced)."""
    specs, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return None
        if ch == "," and depth == 0:
            specs.append(inner[start:i])
            start = i + 1
    if depth:
        return None
    specs.append(inner[start:])
    return [s.strip() for s in specs] if inner.strip() else []


def _spec_problems(spec: str, secret: Callable[[str], bool], number: int) -> list[str]:
    """What is wrong with one `C# type [primary key]` spec: its secret type words, or its
    non-symbol words when it is not of that shape or its type breaks the grammar."""
    m = _COLUMN_SPEC.fullmatch(spec)
    parsed = parse_type(m.group(1) or "") if m else None
    if parsed is None:
        return _stray_words(spec, f"line {number}")
    return type_secrets(parsed[0], secret)


def _stray_words(text: str, where: str) -> list[str]:
    """The words of `text` that are neither symbols nor fixed schema words (else `text`)."""
    words = [w for w in re.findall(r"\w+", _SYMBOL.sub(" ", text)) if w.lower() not in SCHEMA_WORDS]
    return words or [f"{where}: {text!r}"]
