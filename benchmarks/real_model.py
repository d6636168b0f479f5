"""MaskSQL against a real OpenAI-compatible endpoint: masked and unmasked, side by side.

    python benchmarks/real_model.py --base-url http://127.0.0.1:8080/v1 \
        --model qwen2.5-coder-1.5b-instruct -n 8

Two servers on one machine (`serve.sh start 1.5b 8080` and `... 8081`, one thread each)
nearly double the throughput on 2 cores: `--base-url http://127.0.0.1:8080/v1,http://127.0.0.1:8081/v1`.

Runs `python main.py` (the real CLI, as a user would) on temp copies of a seeded sample of a
Spider- or BIRD-layout folder (`--data`; at most one question per database, `-n`, `--seed`),
once with the `masksql` pipeline and once with the `unmasked` baseline, both roles on the given
model, and prints: execution accuracy of both with 95% Wilson intervals, their ratio and the
exact McNemar p-value between them, the leak audit (rows with a name / value / number / literal
leak in an llm prompt), parse failures and retries per stage, tokens, summed call latency and
wall time. One line per question (id, db_id, correct per arm, leak kinds, error class) goes to
`--out` (a JSON file).

`--compare A.json B.json` pairs two such files by question and says, per arm, whether B's
change helped beyond noise: questions gained and lost, intervals, exact McNemar p-value.

`--empty-loopback` instead runs the masked pipeline with a loopback server that answers every
request with `[]` (a small model that finds nothing), over the whole sample: the guard alone
must keep every llm prompt clean. Not a test: it needs a model server and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from masksql_pipe.engine.stage import ERROR_KEY  # noqa: E402
from masksql_pipe.errors import PipeError  # noqa: E402
from masksql_pipe.experiment.stats import mcnemar_exact, wilson_interval  # noqa: E402
from stages.dataset.layout import DatasetLayout, detect_layout, input_rows  # noqa: E402
from stages.privacy.audit import ALLOWED_KIND  # noqa: E402

DEVSET = ROOT.parent / "shared" / "devsets" / "machinespider-train"
DATA = DEVSET if DEVSET.is_dir() else ROOT / "data"
KEY_VARIABLE = "MASKSQL_BENCH_KEY"
ARMS = (("masksql", "masked"), ("unmasked", "unmasked"))


def load_questions(folder: Path) -> tuple[DatasetLayout, list[dict[str, Any]]]:
    """The layout of `folder` and its question rows as written (checked by the layout reader)."""
    layout = detect_layout(folder)
    source = folder / layout.questions
    if not source.is_file():
        raise SystemExit(f"--data {folder}: no {layout.questions} (a {layout.name} folder has it)")
    raw = source.read_bytes()
    try:
        input_rows(source, raw, layout.gold_key)
    except PipeError as exc:
        raise SystemExit(str(exc)) from None
    return layout, json.loads(raw)


def sample_indices(rows: list[dict[str, Any]], n: int, seed: int, start: int = 0) -> list[int]:
    """Row indices of a seeded sample with at most one question per database, in file order.

    The databases are shuffled and one question drawn per database before the cut, so a
    larger `n` (same seed) only adds questions; `n <= 0` takes one from every database.
    """
    by_db: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_db.setdefault(str(row["db_id"]), []).append(i)
    rng = random.Random(seed)
    order = sorted(by_db)
    rng.shuffle(order)
    picked = [rng.choice(by_db[db]) for db in order]
    end = None if n <= 0 else start + n
    return sorted(picked[start:end])


def copy_sample(dest: Path, source: Path, indices: list[int] | None = None) -> Path:
    """A fresh copy of `source` holding only the chosen questions (all when None), the schema
    file and the databases they use, in the source's own layout."""
    layout, rows = load_questions(source)
    chosen = rows if indices is None else [rows[i] for i in indices]
    dest.mkdir(parents=True)
    (dest / layout.questions).write_text(json.dumps(chosen, indent=1), encoding="utf-8")
    shutil.copy(source / layout.tables, dest / layout.tables)
    for db in sorted({str(r["db_id"]) for r in chosen}):
        if (source / layout.databases / db).is_dir():
            shutil.copytree(source / layout.databases / db, dest / layout.databases / db)
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
    pipeline: str, work: Path, args: argparse.Namespace, base_url: str, indices: list[int] | None
) -> dict[str, Any]:
    """One CLI run on a copy of the chosen questions; its results.json, run log, prompt-log
    failures and wall time."""
    data = copy_sample(work / "data", args.data, indices)
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
        *args.set,
    ]
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
        "rows": last_stage_rows(data),
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


def question_records(
    rows: list[dict[str, Any]], indices: list[int], runs: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One record per chosen question: id, db_id and, per arm run, correct / leaks / error."""
    records = []
    for position, index in enumerate(indices):
        row = rows[index]
        record: dict[str, Any] = {
            "id": row.get("question_id", index),
            "index": index,
            "db_id": row["db_id"],
        }
        for label, run in runs.items():
            out = run["rows"][position]
            if out.get("db_id") != row["db_id"] or out.get("question") != row.get("question"):
                raise SystemExit(
                    f"{label}: row {position} of the last stage file is not question {index}"
                )
            error = out.get(ERROR_KEY)
            leaks = out.get("leaks") if isinstance(out.get("leaks"), list) else []
            record[label] = {
                "correct": error is None and out.get("exec_acc") == 1,
                "leaks": sorted(
                    {str(x.get("kind")) for x in leaks if x.get("kind") != ALLOWED_KIND}
                ),
                "error": f"{error.get('stage', '?')}/{error.get('type', '?')}" if error else None,
            }
        records.append(record)
    return records


def write_records(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """A JSON file with the run's settings and one line per question."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    text = '{"meta": ' + json.dumps(meta, ensure_ascii=False) + ',\n"questions": [\n'
    path.write_text(text + ",\n".join(lines) + "\n]}\n", encoding="utf-8")


def ea_text(outcomes: list[bool]) -> str:
    """`k/n = x% (95% Wilson CI lo-hi%)`."""
    k, n = sum(outcomes), len(outcomes)
    ci = wilson_interval(k, n)
    if ci.estimate is None or ci.low is None or ci.high is None:
        return "0/0"
    return (
        f"{k}/{n} = {100 * ci.estimate:.1f}% "
        f"(95% Wilson CI {100 * ci.low:.1f}-{100 * ci.high:.1f}%)"
    )


def arms_summary(records: list[dict[str, Any]]) -> list[str]:
    """EA of each arm with intervals; with both arms, their ratio and the exact McNemar p."""
    labels = [label for _, label in ARMS if records and label in records[0]]
    outcomes = {label: [bool(r[label]["correct"]) for r in records] for label in labels}
    lines = [f"== EA {label}: {ea_text(outcomes[label])}" for label in labels]
    if len(labels) == 2:
        masked, unmasked = outcomes["masked"], outcomes["unmasked"]
        ratio = f"{sum(masked) / sum(unmasked):.2f}" if sum(unmasked) else "n/a"
        test = mcnemar_exact(masked, unmasked)
        lines.append(
            f"== masked/unmasked = {ratio}; exact McNemar p = {test.p_value:.4g} "
            f"(right only masked: {test.only_a}, right only unmasked: {test.only_b})"
        )
    return lines


def load_records(path: Path) -> list[dict[str, Any]]:
    """The question records of an `--out` file; SystemExit naming the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = data["questions"]
        for r in records:
            r["key"] = f"{r['db_id']}#{r['id']}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"--compare {path}: not a real_model.py --out file ({exc})") from None
    return records


def compare(path_a: Path, path_b: Path) -> list[str]:
    """Per arm, B against A over the questions both files hold: gained, lost, exact McNemar."""
    a, b = load_records(path_a), {r["key"]: r for r in load_records(path_b)}
    pairs = [(r, b[r["key"]]) for r in a if r["key"] in b]
    left_out = len(a) + len(b) - 2 * len(pairs)
    lines = [f"== {len(pairs)} questions in both files ({left_out} in only one, left out)"]
    for _, label in ARMS:
        both = [(x[label], y[label]) for x, y in pairs if x.get(label) and y.get(label)]
        if not both:
            continue
        xs = [bool(x["correct"]) for x, _ in both]
        ys = [bool(y["correct"]) for _, y in both]
        test = mcnemar_exact(xs, ys)
        gained, lost = test.only_b, test.only_a
        verdict = "no change beyond noise"
        if test.p_value < 0.05:
            verdict = "B helped beyond noise" if gained > lost else "B hurt beyond noise"
        lines.append(
            f"{label}: A {ea_text(xs)} -> B {ea_text(ys)}; gained {gained}, lost {lost}; "
            f"exact McNemar p = {test.p_value:.4g}: {verdict} (p < 0.05)"
        )
    if len(lines) == 1:
        raise SystemExit(f"--compare: {path_a} and {path_b} share no question with an arm in both")
    return lines


def measure(args: argparse.Namespace) -> None:
    """Both arms (or `--only` one) on a seeded sample; per-question file and EA summary."""
    _, rows = load_questions(args.data)
    indices = sample_indices(rows, args.n, args.seed, args.start)
    if not indices:
        raise SystemExit(
            f"--data {args.data}: no question in the sample (-n {args.n}, --start {args.start})"
        )
    work_root = args.keep or Path(tempfile.mkdtemp(prefix="masksql-real-"))
    runs = {}
    for pipeline, label in ARMS:
        if args.only and args.only != label:
            continue
        work = work_root / label
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        runs[label] = run_pipeline(pipeline, work, args, args.base_url, indices)
        for line in describe(runs[label]):
            print(line, flush=True)
    records = question_records(rows, indices, runs)
    out = args.out or work_root / "questions.json"
    meta = {
        "data": str(args.data.resolve()),
        "seed": args.seed,
        "n": args.n,
        "start": args.start,
        "model": args.model,
        "arms": list(runs),
        "settings": args.set,
        "command": sys.argv,
    }
    write_records(out, meta, records)
    for line in arms_summary(records):
        print(line)
    print(
        f"== {len(records)} questions (seed {args.seed}, one per database) written to {out}; "
        f"model {args.model}; command: {' '.join(sys.argv)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://host/v1; several, comma-separated, "
        "share the rows (one request at a time each)",
    )
    parser.add_argument("--model", help="model id at that endpoint")
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help=f"Spider- or BIRD-layout folder (default {DATA})",
    )
    parser.add_argument(
        "-n",
        type=int,
        default=6,
        help="sample questions, at most one per database (default 6; 0: one from every database)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    parser.add_argument("--start", type=int, default=0, help="skip this many sampled questions")
    parser.add_argument("--out", type=Path, default=None, help="per-question JSON file")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A.json", "B.json"),
        help="pair two --out files by question: did B help beyond noise?",
    )
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="requests in flight (default: one per URL)"
    )
    parser.add_argument("--structured", choices=["json_object", "json_schema"], default=None)
    parser.add_argument("--api-key-env", default=None, help="variable holding the key, if any")
    parser.add_argument("--only", choices=["masked", "unmasked"], default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep run folders here")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pipeline setting for both arms (repeatable), e.g. ranking.keep_text_column=false",
    )
    parser.add_argument("--empty-loopback", action="store_true")
    args = parser.parse_args()
    if args.compare:
        for line in compare(*args.compare):
            print(line)
        return
    if args.empty_loopback:
        empty_loopback(args)
        return
    if not args.base_url or not args.model:
        parser.error("--base-url and --model are required (or --empty-loopback, --compare)")
    if not [u for u in args.base_url.split(",") if u.strip()]:
        parser.error(f"--base-url {args.base_url!r} names no URL")
    measure(args)


if __name__ == "__main__":
    main()
