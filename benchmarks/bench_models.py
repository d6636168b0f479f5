"""Model-call throughput: a PromptProcessor stage vs a bare AsyncOpenAI loop vs raw aiohttp.

A loopback server runs in a separate process with 50 ms latency; 2,000 prompts at concurrency 100.
(a) a PromptProcessor stage run through Pipeline with default settings (response cache,
    prompt log, row journal, progress), and the same with --no-cache,
(b) a bare `AsyncOpenAI` loop with default settings (semaphore 100),
(c) a raw aiohttp loop (the practical floor),
(d) OpenAIModel alone (no stage, no files: what the bookkeeping adds is (a) - (d)),
each run `--repeat` times interleaved (median shown, with this process's CPU per call), plus
the transport/parsing variants of OpenAIModel that informed its defaults.

`--processes` times whole processes instead, as /usr/bin/time would (wall, and the child's
user+system CPU): a fresh interpreter running the model stage through the project (default
direct sender, fresh data folder each time) against a fresh interpreter running a raw aiohttp
script that makes the same calls at the same concurrency and writes the answers; interleaved,
min and median of `--repeat`, and their ratio (target <= 1.2x). Start-up and imports count.

    python benchmarks/bench_models.py [--rows 2000] [--concurrency 100] [--latency 0.05]
    python benchmarks/bench_models.py --processes --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from masksql_pipe.engine.pipeline import Pipeline
from masksql_pipe.engine.stage import RunOptions
from masksql_pipe.lm.limits import CallLimits
from masksql_pipe.lm.model_entries import ModelEntry
from masksql_pipe.lm.openai_model import ClientPool, OpenAIModel
from masksql_pipe.lm.registry import ModelRegistry
from masksql_pipe.prompt.processor import PromptProcessor

KEY = "bench-key"


class Ask(PromptProcessor):
    """One prompt per row; stores the reply."""

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return f"Question {row['id']}: {row['question']}"

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        return output


def prompts(rows: int) -> list[str]:
    return [f"Question {i}: what is {i} times {i}?" for i in range(rows)]


async def run_stage(url: str, rows: int, concurrency: int, no_cache: bool = False) -> float:
    folder = Path(tempfile.mkdtemp(prefix="bench_models_"))
    data = [{"id": i, "question": f"what is {i} times {i}?"} for i in range(rows)]
    (folder / "1_input.json").write_bytes(orjson.dumps(data))
    registry = ModelRegistry(
        {
            "loop": ModelEntry(
                model="bench-model",
                base_url=url,
                max_concurrency=concurrency,
                api_key_env="OPENAI_API_KEY",
            )
        },
        {"OPENAI_API_KEY": KEY},
    )
    options = RunOptions(concurrency=concurrency, no_cache=no_cache, registry=registry)
    start = time.perf_counter()
    await Pipeline([Ask("answer", "loop")], options).run(folder / "1_input.json")
    elapsed = time.perf_counter() - start
    await registry.aclose()
    out = json.loads((folder / "2_Ask.json").read_text())
    assert len(out) == rows and all("pipe_error" not in r for r in out), "stage had errors"
    return elapsed


async def run_model(
    url: str, rows: int, concurrency: int, transport: str, raw: bool, direct: bool = True
) -> float:
    pool = ClientPool(transport=transport)
    model = OpenAIModel(
        "loop",
        model="bench-model",
        base_url=url,
        api_key=KEY,
        pool=pool,
        raw=raw,
        direct=direct,
        limits=CallLimits(max_concurrency=concurrency),
    )
    start = time.perf_counter()
    await asyncio.gather(*(model.complete([{"role": "user", "content": p}]) for p in prompts(rows)))
    elapsed = time.perf_counter() - start
    await pool.aclose()
    return elapsed


async def run_bare_openai(url: str, rows: int, concurrency: int) -> float:
    import openai

    client = openai.AsyncOpenAI(api_key=KEY, base_url=url)
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> str:
        async with gate:
            reply = await client.chat.completions.create(
                model="bench-model", messages=[{"role": "user", "content": prompt}]
            )
            return reply.choices[0].message.content or ""

    start = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts(rows)))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


async def run_raw_aiohttp(url: str, rows: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> str:
            body = orjson.dumps(
                {"model": "bench-model", "messages": [{"role": "user", "content": prompt}]}
            )
            async with gate, session.post(f"{url}/chat/completions", data=body) as resp:
                data = orjson.loads(await resp.read())
                return data["choices"][0]["message"]["content"]

        start = time.perf_counter()
        await asyncio.gather(*(one(p) for p in prompts(rows)))
        return time.perf_counter() - start


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "masksql_pipe.loopback.server",
            "--port",
            "0",
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"loopback server did not start (got {url!r})")
    return proc, url


async def measured(run: Any) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one variant."""
    cpu = time.process_time()
    wall = await run
    return wall, time.process_time() - cpu


async def main(
    rows: int, concurrency: int, latency: float, show_variants: bool, repeat: int
) -> None:
    proc, url = start_server(latency)
    try:
        await run_raw_aiohttp(url, 200, concurrency)  # warm up the server process
        floor = rows / concurrency * latency
        print(f"{rows} prompts, concurrency {concurrency}, server latency {latency * 1000:.0f} ms")
        print(f"ideal (rows / concurrency x latency): {floor:.2f} s")
        variants = {
            "(a) PromptProcessor stage, default settings": lambda: run_stage(
                url, rows, concurrency
            ),
            "(a') the same stage with --no-cache": lambda: run_stage(
                url, rows, concurrency, no_cache=True
            ),
            "(b) bare AsyncOpenAI, default settings": lambda: run_bare_openai(
                url, rows, concurrency
            ),
            "(c) raw aiohttp loop": lambda: run_raw_aiohttp(url, rows, concurrency),
            "(d) OpenAIModel alone (no stage, no files)": lambda: run_model(
                url, rows, concurrency, "aiohttp", True
            ),
        }
        runs: dict[str, list[tuple[float, float]]] = {label: [] for label in variants}
        for _ in range(repeat):  # interleaved, so a busy moment of the machine hits all alike
            for label, make in variants.items():
                runs[label].append(await measured(make()))
        results = {label: sorted(found)[len(found) // 2] for label, found in runs.items()}
        print(f"median of {repeat} interleaved runs each")
        for label, (seconds, cpu) in results.items():
            print(
                f"{label:44s} {seconds:6.2f} s  ({rows / seconds:6.0f} req/s)"
                f"  client CPU {cpu:5.2f} s ({cpu / rows * 1e3:.2f} ms/call)"
            )
        (a, _), (a_off, _), (b, _), (c, _), _ = results.values()
        print(f"(b)/(a) = {b / a:.2f}x  (goal >= 2)")
        print(f"(a)/(c) = {a / c:.2f}x  (goal <= 1.3: cache, prompt log, journal, progress on)")
        print(f"(a')/(c) = {a_off / c:.2f}x  (cache off)")
        if show_variants:
            print("OpenAIModel variants (no stage, no files):")
            for transport in ("httpx", "aiohttp"):
                for raw in (False, True):
                    seconds = await run_model(url, rows, concurrency, transport, raw, False)
                    parse = "orjson raw" if raw else "pydantic"
                    print(f"  openai client, {transport:8s} parse {parse:10s} {seconds:6.2f} s")
            seconds = await run_model(url, rows, concurrency, "aiohttp", True, True)
            print(f"  direct aiohttp sender (the default)       {seconds:6.2f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


PROJECT_PROCESS = """
import asyncio, sys
from pathlib import Path
from masksql_pipe.engine.pipeline import Pipeline
from masksql_pipe.engine.stage import RunOptions
from masksql_pipe.lm.registry import ModelRegistry
from masksql_pipe.prompt.processor import PromptProcessor

folder, concurrency = Path(sys.argv[1]), int(sys.argv[2])


class Ask(PromptProcessor):
    def _get_prompt(self, row):
        return f"Question {row['id']}: {row['question']}"

    def _process_output(self, row, output):
        return output


async def main():
    registry = ModelRegistry.from_environment(config_file=folder / "models.yaml")
    options = RunOptions(concurrency=concurrency, registry=registry, progress=False)
    await Pipeline([Ask("answer", "loop")], options).run(folder / "1_input.json")
    await registry.aclose()


asyncio.run(main())
"""
"""The project's side: a user's script running one model stage (cache, prompt log, journal)
with the model from a models file."""

RAW_PROCESS = """
import asyncio, sys
import aiohttp, orjson

url, out, rows, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


async def main():
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(i):
            prompt = f"Question {i}: what is {i} times {i}?"
            body = orjson.dumps(
                {"model": "bench-model", "messages": [{"role": "user", "content": prompt}]}
            )
            async with gate, session.post(url + "/chat/completions", data=body) as resp:
                data = orjson.loads(await resp.read())
                return {"id": i, "answer": data["choices"][0]["message"]["content"]}

        answers = await asyncio.gather(*(one(i) for i in range(rows)))
    with open(out, "wb") as file:
        file.write(orjson.dumps(answers))


asyncio.run(main())
"""
"""The baseline: the same calls from a bare aiohttp script that writes the answers."""


def timed_process(args: list[str]) -> tuple[float, float]:
    """(wall seconds, user+system CPU seconds) of one child process, as /usr/bin/time sees it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def project_run(url: str, rows: int, concurrency: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="bench_models_proc_"))
    data = [{"id": i, "question": f"what is {i} times {i}?"} for i in range(rows)]
    (folder / "1_input.json").write_bytes(orjson.dumps(data))
    entry = {"model": "bench-model", "base_url": url, "max_concurrency": concurrency}
    (folder / "models.yaml").write_bytes(orjson.dumps({"models": {"loop": entry}}))
    found = timed_process(["-c", PROJECT_PROCESS, str(folder), str(concurrency)])
    out = json.loads((folder / "2_Ask.json").read_text())
    assert len(out) == rows and all("pipe_error" not in r for r in out), "stage had errors"
    return found


def raw_run(url: str, rows: int, concurrency: int) -> tuple[float, float]:
    out = Path(tempfile.mkdtemp(prefix="bench_models_raw_")) / "answers.json"
    found = timed_process(["-c", RAW_PROCESS, url, str(out), str(rows), str(concurrency)])
    assert len(json.loads(out.read_text())) == rows, "raw script lost answers"
    return found


def processes_main(rows: int, concurrency: int, latency: float, repeat: int) -> None:
    """Whole processes side by side: the project's stage vs the raw aiohttp script."""
    proc, url = start_server(latency)
    try:
        raw_run(url, 200, concurrency)  # warm the server and the file cache of both sides
        project_run(url, 200, concurrency)
        print(
            f"whole processes: {rows} calls, concurrency {concurrency}, "
            f"server latency {latency * 1000:.0f} ms, {repeat} interleaved runs each"
        )
        print(
            f"ideal call time (rows / concurrency x latency): {rows / concurrency * latency:.2f} s"
        )
        runs: dict[str, list[tuple[float, float]]] = {"raw": [], "project": []}
        for _ in range(repeat):
            runs["raw"].append(raw_run(url, rows, concurrency))
            runs["project"].append(project_run(url, rows, concurrency))
        labels = {"raw": "raw aiohttp script", "project": "project model stage (direct)"}
        figures = {}
        for side, found in runs.items():
            walls = [wall for wall, _ in found]
            cpus = [cpu for _, cpu in found]
            figures[side] = (min(walls), statistics.median(walls))
            print(
                f"  {labels[side]:30s} wall min {min(walls):5.2f} s  median "
                f"{statistics.median(walls):5.2f} s   CPU median {statistics.median(cpus):5.2f} s"
            )
        (raw_min, raw_med), (pro_min, pro_med) = figures["raw"], figures["project"]
        print(
            f"project / raw: min {pro_min / raw_min:.2f}x, median {pro_med / raw_med:.2f}x "
            "(target <= 1.2x)"
        )
        with open("/proc/loadavg", encoding="ascii") as file:
            print(f"load average (shared machine, {os.cpu_count()} CPUs): {file.read().strip()}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--no-variants", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of each variant")
    parser.add_argument("--processes", action="store_true", help="time whole processes instead")
    args = parser.parse_args()
    if args.processes:
        processes_main(args.rows, args.concurrency, args.latency, args.repeat)
        raise SystemExit(0)
    asyncio.run(main(args.rows, args.concurrency, args.latency, not args.no_variants, args.repeat))
