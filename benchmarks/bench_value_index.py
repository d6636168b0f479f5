"""The privacy guard's value index on a database with millions of cells, against a plain scan.

    python benchmarks/bench_value_index.py [--rows 400000]

Writes a SQLite database of `rows` x 5 text columns (2 million cells at the default), builds the
value index once (stages.privacy.value_index), then answers "which phrases of this question are
cells?" for a batch of questions, and does the same by the baseline a guard without an index
would use: one `SELECT 1 FROM t WHERE col = ? LIMIT 1` per phrase and column on the database
itself. Prints build time, per-question time of both and their ratio, and the reuse time (a
second run finds the index on disk).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stages.privacy import value_index
from stages.privacy.text import phrases
from stages.privacy.value_index import ValueIndex

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]


def make_database(path: Path, rows: int, seed: int = 7) -> list[str]:
    """A table of `rows` rows x 5 text columns; returns a few of its cell values."""
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT, city TEXT, street TEXT, job TEXT, note TEXT)")

    def cell(i: int, k: int) -> str:
        return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i * 5 + k}"

    con.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?, ?)",
        ((cell(i, 0), cell(i, 1), cell(i, 2), cell(i, 3), cell(i, 4)) for i in range(rows)),
    )
    con.commit()
    samples = [r[0] for r in con.execute("SELECT city FROM people ORDER BY random() LIMIT 20")]
    con.close()
    return samples


def baseline(db: Path, texts: list[str]) -> int:
    """Phrases found by asking the database itself, column by column (no index)."""
    con = sqlite3.connect(db)
    columns = ["name", "city", "street", "job", "note"]
    found = 0
    for text in texts:
        for _, _, norm in phrases(text):
            for column in columns:
                query = f"SELECT 1 FROM people WHERE lower({column}) = ? LIMIT 1"
                if con.execute(query, (norm,)).fetchone():
                    found += 1
                    break
    con.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-value-index-") as tmp:
        db = Path(tmp) / "big.sqlite"
        started = time.perf_counter()
        samples = make_database(db, args.rows)
        made = time.perf_counter() - started
        texts = [
            f"Who lives in {samples[i % len(samples)]} and works as a mike?"
            for i in range(args.questions)
        ]
        started = time.perf_counter()
        index = ValueIndex.for_database(db, Path(tmp) / "index")
        built = time.perf_counter() - started
        started = time.perf_counter()
        hits = sum(len(index.lookup(norm for _, _, norm in phrases(t))) for t in texts)
        indexed = (time.perf_counter() - started) / len(texts)
        value_index._OPEN.clear()
        started = time.perf_counter()
        ValueIndex.for_database(db, Path(tmp) / "index")
        reused = time.perf_counter() - started
        started = time.perf_counter()
        base_hits = baseline(db, texts[:1])
        scanned = time.perf_counter() - started
    cells = args.rows * 5
    print(f"database: {cells:,} cells ({made:.1f} s to write)")
    print(f"index build, once per database file: {built:.1f} s; reuse by a new run: {reused:.3f} s")
    print(
        f"per question: index {1000 * indexed:.2f} ms ({hits} phrase hits over "
        f"{len(texts)} questions); scan baseline {1000 * scanned:.0f} ms "
        f"({base_hits} hits over 1 question)"
    )
    print(f"ratio scan / index per question: {scanned / indexed:.0f}x")


if __name__ == "__main__":
    main()
