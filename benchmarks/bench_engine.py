"""Engine overhead: a pass-through stage vs a bare orjson round trip of the same file.

Each measurement runs in its own subprocess (so peak memory is that run's alone), the two
alternate, and the script prints medians and the ratios. Target: both ratios at most 1.5.
The engine's time includes freeing the parsed rows (it must, before the next stage); the bare
run's freeing is timed apart and shown in a second ratio. The engine also fsyncs its output.

    python benchmarks/bench_engine.py [--rows 200000] [--repeat 3]

``--streaming`` measures whole processes instead (/usr/bin/time -v: wall and peak RSS, min and
median of ``--repeat``), the engine's streaming stages beside bare orjson scripts:

    python benchmarks/bench_engine.py --streaming [--rows 1000000] [--chain-rows 1000000]
        [--big-rows 10000000]   # a 3-stage chain, engine vs a bare streaming script

The big chain's bare script cannot hold the file, so it streams too: it reads the engine's own
layout a row at a time (a row ends at a line ``  }`` or ``  },``), parses and re-serializes
each row with orjson, 1,000 rows per write: the least a streaming script must do.
"""

from __future__ import annotations

import argparse
import json
import random
import re
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


def make_rows(count: int, start: int = 0) -> list[dict]:
    rnd = random.Random(7 + start)
    words = ["singer", "concert", "stadium", "name", "country", "age", "year"]
    words += ["capacity", "average", "highest", "Städte"]
    rows = []
    for i in range(start, start + count):
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


ENGINE_CHAIN = r"""
import asyncio, sys
from masksql_pipe import JsonListTransformer, Pipeline, RunOptions


class PassThrough(JsonListTransformer):
    async def _process_row(self, row):
        return row


stages = [PassThrough().named(f"P{i}") for i in range(int(sys.argv[2]))]
asyncio.run(Pipeline(stages, RunOptions(progress=False)).run(sys.argv[1]))
"""

BARE_CHAIN = r"""
import sys
from pathlib import Path
import orjson

source = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    rows = orjson.loads(source.read_bytes())
    target = source.parent / f"{i + 2}_B{i}.json"
    target.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
    del rows
    source = target
"""


BARE_STREAM_CHAIN = r"""
import sys
from pathlib import Path
import orjson

END = (b"  }\n", b"  },\n")
INDENT = orjson.OPT_INDENT_2
source = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    target = source.parent / f"{i + 2}_B{i}.json"
    with source.open("rb") as src, target.open("wb") as out:
        out.write(b"[\n")
        lines, rows, first = [], [], True
        for line in src:
            if line in (b"[\n", b"]\n"):
                continue
            lines.append(line)
            if line in END:
                lines[-1] = b"  }\n"
                rows.append(orjson.loads(b"".join(lines)))
                lines = []
                if len(rows) == 1000:
                    out.write((b"" if first else b",\n") + orjson.dumps(rows, option=INDENT)[2:-2])
                    rows, first = [], False
        if rows:
            out.write((b"" if first else b",\n") + orjson.dumps(rows, option=INDENT)[2:-2])
        out.write(b"\n]\n")
    source = target
"""


def write_input(path: Path, count: int) -> None:
    """The input in the engine's own layout, written 10,000 rows at a time (bounded memory)."""
    with path.open("wb") as handle:
        for start in range(0, count, 10_000):
            rows = make_rows(min(10_000, count - start), start)
            body = orjson.dumps(rows, option=orjson.OPT_INDENT_2)[2:-2]
            handle.write((b",\n" if start else b"[\n") + body)
        handle.write(b"\n]\n" if count else b"[]\n")


def timed(script: str, folder: Path, stages: int) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one whole process, from /usr/bin/time -v."""
    for stale in folder.glob("*_[BP]*.json"):
        stale.unlink()
    subprocess.run(["rm", "-rf", str(folder / ".masksql_pipe")], check=True)
    command = ["/usr/bin/time", "-v", sys.executable, "-c", script]
    result = subprocess.run(
        [*command, str(folder / "1_input.json"), str(stages)], capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    assert wall is not None, result.stderr
    hours, minutes, seconds = int(wall[1] or 0), int(wall[2]), float(wall[3])
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    assert peak is not None, result.stderr
    return hours * 3600 + minutes * 60 + seconds, int(peak[1]) / 1024


def compare(
    label: str, folder: Path, rows: int, stages: int, repeat: int, bare: str = BARE_CHAIN
) -> None:
    """Engine and bare scripts alternately, ``repeat`` times each; min and median."""
    write_input(folder / "1_input.json", rows)
    size = (folder / "1_input.json").stat().st_size / 1e6
    runs: dict[str, list[tuple[float, float]]] = {"bare": [], "engine": []}
    for _ in range(repeat):
        runs["bare"].append(timed(bare, folder, stages))
        runs["engine"].append(timed(ENGINE_CHAIN, folder, stages))
    print(f"{label}: {rows:,} rows, {size:.0f} MB, {stages} stage(s), {repeat} runs each")
    for mode, measured in runs.items():
        walls = [wall for wall, _ in measured]
        peaks = [peak for _, peak in measured]
        print(
            f"  {mode:6} wall min {min(walls):.2f}s median {statistics.median(walls):.2f}s"
            f"  peak RSS min {min(peaks):.0f} MiB median {statistics.median(peaks):.0f} MiB"
        )
    ratio = [min(w for w, _ in runs[m]) for m in ("engine", "bare")]
    median = [statistics.median(w for w, _ in runs[m]) for m in ("engine", "bare")]
    print(f"  wall engine/bare: min {ratio[0] / ratio[1]:.2f}, median {median[0] / median[1]:.2f}")


def streaming(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        compare("pass-through", folder, args.rows, 1, args.repeat)
        compare("chain of 10", folder, args.chain_rows, 10, args.repeat)
        if args.big_rows:
            label = "3-stage chain vs bare streaming"
            compare(label, folder, args.big_rows, 3, args.big_repeat, BARE_STREAM_CHAIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--streaming", action="store_true")
    parser.add_argument("--chain-rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=0)
    parser.add_argument("--big-repeat", type=int, default=1)
    args = parser.parse_args()
    if args.streaming:
        streaming(args)
        return
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
