"""Text rules the guard and the leak audit share: normalising, phrases, numbers, quoted strings.

One definition of "this text mentions that value" for both sides, so the audit judges exactly
what the guard promises: case-insensitive, quotes and whitespace normalised, whole words only.

Unicode: every text is first made `visible` (invisible characters removed, then NFKC), the form
the guard scans and the remote model receives; `normalize` adds case folding, quote and space
folding and the Latin reading of a word that mixes Latin with Cyrillic or Greek look-alikes
("France" written with a Cyrillic a, U+0430). A word written wholly in look-alikes of another
script (every letter Cyrillic) is not folded: it is a word of that script as far as these
rules can tell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})
_SPACES = re.compile(r"\s+")
_EXTRA_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u3164\uffa0" + "".join(chr(c) for c in range(0xFE00, 0xFE10))
)
"""Invisible characters outside category Cf: combining grapheme joiner, Hangul fillers,
variation selectors."""
_LOOKALIKES = str.maketrans(
    "авекмнорстухѕіјԁһӏԛԝαβεηικνορτυχ",
    "abekmhopctyxsijdhlqwabenikvoptux",
)
"""Lower-case Cyrillic and Greek letters that read as a Latin one (after case folding)."""
_LATIN = re.compile(r"[a-z]")
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


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or ch in _EXTRA_INVISIBLE


def visible(text: str) -> str:
    """`text` without invisible characters (category Cf: zero-width space and joiners, word
    joiner, BOM, soft hyphen ...), then NFKC; case kept. What the guard scans and sends."""
    text = str(text)
    if text.isascii():
        return text
    text = "".join(ch for ch in text if not _invisible(ch))
    return unicodedata.normalize("NFKC", text)


def _latin_reading(word: re.Match[str]) -> str:
    text = word.group(0)
    if _LATIN.search(text) and text != text.translate(_LOOKALIKES):
        return text.translate(_LOOKALIKES)
    return text


def normalize(text: str) -> str:
    """The one form every comparison uses: `visible`, case-folded (then NFKC again), curly
    quotes straight, whitespace runs one space, stripped, mixed-script words read as Latin."""
    folded = visible(text).translate(_QUOTES).casefold()
    if not folded.isascii():
        folded = WORD.sub(_latin_reading, unicodedata.normalize("NFKC", folded))
    return _SPACES.sub(" ", folded).strip()


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
    """Case-insensitive whole-word occurrences of `needle` in `text` (after quote folding);
    `needle` is made `visible`, `text` should already be (spans are offsets into it)."""
    needle = visible(needle)
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
