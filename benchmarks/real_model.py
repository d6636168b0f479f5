"""MaskSQL against a real OpenAI-compatible endpoint: masked and unmasked, side by side.

    python benchmarks/real_model.py --base-url http://127.0.0.1:8080/v1 \
        --model qwen2.5-coder-1.5b-instruct -n 8

Two servers on one machine (`serve.sh start 1.5b 8080` and `... 8081`, one thread each)
nearly double the throughput on 2 cores: `--base-url http://127.0.0.1:8080/v1,http://127.0.0.1:8081/v1`.

Runs `python main.py` (the real CLI, as a user would) on temp copies of the sample data, once
with the `masksql` pipeline and once with the `unmasked` baseline, both roles on the given
model, and prints: execution accuracy of both (and their ratio), the leak audit (rows with a
name / value / number / literal leak in an llm prompt), parse failures and retries per stage,
tokens, summed call latency and wall time.

`--empty-loopback` instead runs the masked pipeline with a loopback server that answers every
request with `[]` (a small model that finds nothing), over the whole sample: the guard alone
must keep every llm prompt clean. Not a test: it needs a model server and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
KEY_VARIABLE = "MASKSQL_BENCH_KEY"


def copy_sample(dest: Path) -> Path:
    """A fresh copy of the sample dataset: input, schema file and databases only."""
    dest.mkdir(parents=True)
    shutil.copy(DATA / "1_input.json", dest / "1_input.json")
    shutil.copy(DATA / "tables.json", dest / "tables.json")
    shutil.copytree(DATA / "databases", dest / "databases")
    return dest


def models_file(folder: Path, args: argparse.Namespace, base_url: str) -> Path:
    """A models file naming the endpoint(s) as model `real`: one request at a time per
    endpoint; several comma-separated URLs (one server each) share the rows."""
    settings: dict[str, Any] = {"temperature": 0, "max_tokens": args.max_tokens}
    urls = [u.strip() for u in base_url.split(",") if u.strip()]
    entry: dict[str, Any] = {
        "model": args.model,
        "api_key_env": KEY_VARIABLE,
        "settings": settings,
        "max_concurrency": args.concurrency or len(urls),
        "timeout": args.timeout,
    }
    if len(urls) > 1:
        entry["base_urls"] = [{"url": u, "max_concurrency": 1} for u in urls]
    else:
        entry["base_url"] = urls[0]
    if args.structured:
        entry["structured"] = args.structured
    path = folder / "models.json"
    path.write_text(json.dumps({"models": {"real": entry}}, indent=2), encoding="utf-8")
    return path


def run_pipeline(
    pipeline: str, work: Path, args: argparse.Namespace, base_url: str, limit: int | None
) -> dict[str, Any]:
    """One CLI run; its results.json, run log, prompt-log failures and wall time."""
    data = copy_sample(work / "data")
    models = models_file(work, args, base_url)
    command = [
        sys.executable,
        str(ROOT / "main.py"),
        "--data",
        str(data),
        "--pipeline",
        pipeline,
        "--models",
        str(models),
        "--max-errors",
        "100000",
        "models.slm=real",
        "models.llm=real",
    ]
    if limit is not None:
        command += ["--limit", str(limit), "--start", str(args.start)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env[KEY_VARIABLE] = os.environ.get(args.api_key_env or "", "") or "local"
    env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    results_path = data / "results.json"
    if not results_path.is_file():
        raise SystemExit(
            f"{pipeline}: the run wrote no results (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    runs = sorted((data / ".masksql_pipe" / "runs").glob("*.json"))
    run_log = json.loads(runs[-1].read_text(encoding="utf-8")) if runs else {}
    return {
        "pipeline": pipeline,
        "exit": proc.returncode,
        "wall": wall,
        "results": json.loads(results_path.read_text(encoding="utf-8")),
        "stages": [s for s in run_log.get("stages", []) if (s.get("stats") or {}).get("model")],
        "prompt_errors": prompt_log_errors(data),
        "folder": data,
    }


def prompt_log_errors(data: Path) -> dict[str, int]:
    """Logged calls that ended in an error (failed parse, cut-off, refused), per stage log."""
    counts: dict[str, int] = {}
    for path in sorted((data / ".masksql_pipe" / "prompts").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("error"):
                counts[path.stem] = counts.get(path.stem, 0) + 1
    return counts


def describe(run: dict[str, Any]) -> list[str]:
    """Printable lines for one run."""
    res = run["results"]
    audit = res["privacy"].get("leak_audit") or {}
    lines = [
        f"== {run['pipeline']} (exit {run['exit']}; files in {run['folder']})",
        f"execution accuracy: {res['correct']}/{res['rows']}"
        + (f" = {100 * res['exec_acc']:.1f}%" if res.get("exec_acc") is not None else ""),
        f"leak audit: {audit.get('rows_with_leaks')}/{audit.get('audited_rows')} rows with a "
        f"leak in an llm prompt; by kind {audit.get('by_kind')}; "
        f"{audit.get('prompts')} llm prompts audited",
        f"attacker-model re-identification estimate: {res['privacy'].get('reidentification_rate')}",
        f"tokens: {res['tokens']['total']}; summed call latency: {res['latency']['total']:.1f} s; "
        f"wall time: {run['wall']:.1f} s",
        f"rows with errors: {res['errors']['rows']} {res['errors']['by_stage']}",
        "per stage: calls / failed calls / parse retries / rejected / cut off / "
        "tokens / latency p50 s",
    ]
    for stage in run["stages"]:
        s = stage["stats"]
        tokens = int(s.get("prompt_tokens") or 0) + int(s.get("completion_tokens") or 0)
        lines.append(
            f"  {stage['name']:<20} {s.get('calls', 0):>4} / {s.get('failed_calls', 0)} / "
            f"{s.get('parse_retries', 0)} / {s.get('rejected_replies', 0)} / "
            f"{s.get('cut_off_replies', 0)} / {tokens} / {s.get('latency_p50')}"
        )
    if run["prompt_errors"]:
        lines.append(f"logged failed calls per stage log: {run['prompt_errors']}")
    rows = last_stage_rows(run["folder"])
    aligned = sum(1 for r in rows if r.get("value_columns_aligned"))
    dropped = sum(len(r.get("values_dropped") or []) for r in rows)
    lines.append(
        f"local fixes: {aligned} rows with a value moved to its own column; "
        f"{dropped} detected values dropped (not in the question)"
    )
    return lines


def last_stage_rows(data: Path) -> list[dict[str, Any]]:
    """The rows of the highest-numbered stage file of a run folder."""
    numbered = [p for p in data.glob("*_*.json") if p.name.split("_", 1)[0].isdigit()]
    if not numbered:
        return []
    last = max(numbered, key=lambda p: int(p.name.split("_", 1)[0]))
    return json.loads(last.read_text(encoding="utf-8"))


def empty_loopback(args: argparse.Namespace) -> None:
    """The guard alone: every request answered with `[]`; count leaking llm prompts."""
    sys.path.insert(0, str(ROOT))
    from masksql_pipe.loopback.server import LoopbackServer

    work = args.keep or Path(tempfile.mkdtemp(prefix="masksql-empty-"))
    if (work / "data").exists():
        shutil.rmtree(work / "data")
    work.mkdir(parents=True, exist_ok=True)
    with LoopbackServer(reply=lambda messages: "[]") as server:
        args.model = "empty-small-model"
        run = run_pipeline("masksql", work, args, server.base_url, None)
        for line in describe(run):
            print(line)
        leaking = run["results"]["privacy"]["leak_audit"]["rows_with_leaks"]
        print(f"server requests: {server.requests}; rows with a leaking llm prompt: {leaking}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://host/v1; several, comma-separated, "
        "share the rows (one request at a time each)",
    )
    parser.add_argument("--model", help="model id at that endpoint")
    parser.add_argument("-n", type=int, default=6, help="sample questions (default 6)")
    parser.add_argument("--start", type=int, default=0, help="first question (default 0)")
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="requests in flight (default: one per URL)"
    )
    parser.add_argument("--structured", choices=["json_object", "json_schema"], default=None)
    parser.add_argument("--api-key-env", default=None, help="variable holding the key, if any")
    parser.add_argument("--only", choices=["masked", "unmasked"], default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep run folders here")
    parser.add_argument("--empty-loopback", action="store_true")
    args = parser.parse_args()
    if args.empty_loopback:
        empty_loopback(args)
        return
    if not args.base_url or not args.model:
        parser.error("--base-url and --model are required (or --empty-loopback)")
    if not [u for u in args.base_url.split(",") if u.strip()]:
        parser.error(f"--base-url {args.base_url!r} names no URL")
    work_root = args.keep or Path(tempfile.mkdtemp(prefix="masksql-real-"))
    runs = []
    for pipeline, label in (("masksql", "masked"), ("unmasked", "unmasked")):
        if args.only and args.only != label:
            continue
        work = work_root / label
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        run = run_pipeline(pipeline, work, args, args.base_url, args.n)
        runs.append(run)
        for line in describe(run):
            print(line, flush=True)
    if len(runs) == 2:
        masked, unmasked = (r["results"] for r in runs)
        ratio = (
            f"{masked['exec_acc'] / unmasked['exec_acc']:.2f}" if unmasked["exec_acc"] else "n/a"
        )
        print(
            f"== EA masked {masked['correct']}/{masked['rows']} vs unmasked "
            f"{unmasked['correct']}/{unmasked['rows']} (masked/unmasked = {ratio}); "
            f"model {args.model}; command: {' '.join(sys.argv)}"
        )


if __name__ == "__main__":
    main()
