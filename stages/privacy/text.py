"""Text rules the guard and the leak audit share: normalising, phrases, numbers, quoted strings.

One definition of "this text mentions that value" for both sides, so the audit judges exactly
what the guard promises: case-insensitive, quotes and whitespace normalised, whole words only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})
_SPACES = re.compile(r"\s+")
WORD = re.compile(r"\w+[+#]*")
SYMBOL = re.compile(r"(?<!\w)[TCVA][1-9]\d*(?!\w)", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
DATE = re.compile(r"(?<![\w.-])\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?(?![\w])")
PATTERN_VALUE = re.compile(
    r"\b(?:start(?:s|ing)?|begin(?:s|ning)?|end(?:s|ing)?)\s+with\s+(?:the\s+)?"
    r"(?:letters?\s+|word\s+|string\s+|text\s+)?['\"]?([^\s'\".,;:?!]+)"
    r"|\b(?:contain(?:s|ing)?|includ(?:es|ing))\s+(?:the\s+)?"
    r"(?:letters?|word|string|text|substring)\s+['\"]?([^\s'\".,;:?!]+)",
    re.IGNORECASE,
)
"""A word the question gives as a LIKE pattern: "starts with Mar", "containing the word x"."""
QUOTED = re.compile(r"\"([^\"\n]{1,200})\"|“([^”\n]{1,200})”|(?<!\w)'([^'\n]{1,200})'(?!\w)")
MAX_PHRASE_WORDS = 8

STOP_WORDS = frozenset(
    """a an and are as at be by can do does for from had has have how in is it its many
    more most much not of on or than that the their them there these they this those to
    was were what when where which who whom whose why with all any each every per
    i me my we us our you your he him his she her if so up no yes""".split()  # noqa: SIM905
)
"""Function words never matched as database values (a cell "the" is not a secret)."""


def normalize(text: str) -> str:
    """Case-folded, curly quotes made straight, whitespace runs made one space, stripped."""
    return _SPACES.sub(" ", str(text).translate(_QUOTES)).strip().casefold()


def phrases(text: str, max_words: int = MAX_PHRASE_WORDS) -> Iterator[tuple[int, int, str]]:
    """Every run of 1..max_words consecutive words: (start, end, normalized text)."""
    words = [m.span() for m in WORD.finditer(text)]
    for i, (start, _) in enumerate(words):
        for j in range(i, min(i + max_words, len(words))):
            end = words[j][1]
            yield start, end, normalize(text[start:end])


def number_value(text: str) -> int | float:
    """The value of a NUMBER match (thousands separators removed)."""
    raw = text.replace(",", "")
    return float(raw) if "." in raw else int(raw)


def digit_count(text: str) -> int:
    """Digits in a number's text (1,200.5 has 5)."""
    return sum(ch.isdigit() for ch in text)


def symbol_spans(text: str) -> list[tuple[int, int]]:
    """Spans of symbol words (T1, C2, V3, A1): never themselves a leak, never masked again."""
    return [m.span() for m in SYMBOL.finditer(text)]


def find_whole(text: str, needle: str) -> list[tuple[int, int]]:
    """Case-insensitive whole-word occurrences of `needle` in `text` (after quote folding)."""
    if not needle.strip():
        return []
    folded = text.translate(_QUOTES)
    pattern = re.compile(
        r"(?<!\w)"
        + r"\s+".join(re.escape(p) for p in needle.translate(_QUOTES).split())
        + r"(?!\w)",
        re.IGNORECASE,
    )
    return [m.span() for m in pattern.finditer(folded)]
