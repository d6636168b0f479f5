"""Engine overhead: a pass-through stage vs a bare orjson round trip of the same file.

Each measurement runs in its own subprocess (so peak memory is that run's alone), the two
alternate, and the script prints medians and the ratios. Target: both ratios at most 1.5.
The engine's time includes freeing the parsed rows (it must, before the next stage); the bare
run's freeing is timed apart and shown in a second ratio. The engine also fsyncs its output.

    python benchmarks/bench_engine.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

CHILD = r"""
import asyncio, resource, sys, time, json
from pathlib import Path

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (resource.getpagesize() // 1024)

mode, folder = sys.argv[1], Path(sys.argv[2])
import orjson
if mode == "engine":
    from masksql_pipe import JsonListTransformer, Pipeline, RunOptions

    class PassThrough(JsonListTransformer):
        async def _process_row(self, row):
            return row

base = rss_kib()
t0 = time.perf_counter()
free = 0.0
if mode == "bare":
    rows = orjson.loads((folder / "1_input.json").read_bytes())
    (folder / "2_Bare.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    t1 = time.perf_counter()
    del rows  # the engine frees its rows before it returns; time the bare run's freeing apart
    free = time.perf_counter() - t1
else:
    asyncio.run(Pipeline([PassThrough()], RunOptions(progress=False)).run(folder / "1_input.json"))
wall = time.perf_counter() - t0 - free
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall": wall, "free": free, "peak_kib": peak, "base_kib": base}))
"""


def make_rows(count: int) -> list[dict]:
    rnd = random.Random(7)
    words = ["singer", "concert", "stadium", "name", "country", "age", "year"]
    words += ["capacity", "average", "highest", "Städte"]
    rows = []
    for i in range(count):
        question = " ".join(rnd.choice(words) for _ in range(34))
        rows.append(
            {
                "question_id": i,
                "db_id": f"db_{i % 40}",
                "question": question,
                "query": f"SELECT name FROM singer WHERE age > {i % 90} ORDER BY name",
                "schema_links": {"singer": "T1", "name": "C2", "age": "C4"},
                "total_toks": i % 500,
                "total_latency": round((i % 97) / 13, 3),
            }
        )
    return rows


def measure(mode: str, folder: Path) -> dict:
    for stale in folder.glob("[2-9]_*.json"):
        stale.unlink()
    book = folder / ".masksql_pipe"
    if book.exists():
        subprocess.run(["rm", "-rf", str(book)], check=True)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(folder)], capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(result.stderr)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = orjson.dumps(make_rows(args.rows))
        (folder / "1_input.json").write_bytes(data)
        print(f"input: {args.rows} rows, {len(data) / 1e6:.1f} MB")
        runs: dict[str, list[dict]] = {"bare": [], "engine": []}
        for _ in range(args.repeat):
            for mode in runs:
                runs[mode].append(measure(mode, folder))
        med = {
            mode: {
                "wall": statistics.median(r["wall"] for r in rs),
                "free": statistics.median(r["free"] for r in rs),
                "peak": statistics.median(r["peak_kib"] for r in rs) / 1024,
                "delta": statistics.median(r["peak_kib"] - r["base_kib"] for r in rs) / 1024,
            }
            for mode, rs in runs.items()
        }
        for mode, m in med.items():
            print(
                f"{mode:6}: wall {m['wall']:.3f}s  peak RSS {m['peak']:.0f} MiB"
                f"  (above start {m['delta']:.0f} MiB)"
            )
        engine, bare = med["engine"]["wall"], med["bare"]["wall"]
        print(f"wall ratio engine/bare: {engine / bare:.2f} (target <= 1.5)")
        print(
            "wall ratio engine/(bare + freeing its rows, which the engine's time includes):"
            f" {engine / (bare + med['bare']['free']):.2f}"
        )
        peak_ratio = med["engine"]["peak"] / med["bare"]["peak"]
        print(f"peak RSS ratio engine/bare: {peak_ratio:.2f} (target <= 1.5)")
        print(
            "peak above start ratio engine/bare: "
            f"{med['engine']['delta'] / med['bare']['delta']:.2f}"
        )


if __name__ == "__main__":
    main()
