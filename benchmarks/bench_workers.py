"""SQL execution and scoring with ``--workers 2`` beside ``--workers 1``, on a Spider folder.

The default MaskSQL pipeline runs once with the offline oracle on a copy of the folder (548
questions of the development set by default) to make ``13_AddConcreteSql.json``. Then each
measurement is a whole process that runs ExecuteConcreteSql and CalcExecAcc, as the default
pipeline builds them, over a fresh copy of that file with ``RunOptions(workers=N)``; the two
settings alternate, ``--repeat`` times each. Printed: the two stages' time as the engine records
it (from reading the input to the renamed output), the process's wall time, min and median, the
ratios, and /proc/loadavg before and after (the machine may be shared). The outputs of both
settings must be byte-identical, and the stage-14 file identical to the pipeline's own.

    python benchmarks/bench_workers.py [--data DIR] [--repeat 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVSET = next(
    (
        folder / "shared" / "devsets" / "machinespider-train"
        for folder in ROOT.parents
        if (folder / "shared" / "devsets" / "machinespider-train").is_dir()
    ),
    ROOT / "data",
)
"""The development set (548 questions) in a ``shared`` folder above the repository, else data/."""
SOURCE = "13_AddConcreteSql.json"
OUTPUTS = ("14_ExecuteConcreteSql.json", "15_CalcExecAcc.json")

CHILD = r"""
import asyncio, json, sys, time
t0 = time.perf_counter()
from masksql_pipe import Pipeline, RunOptions
from stages.pipelines.masksql import MaskSqlPipeline
folder, workers = sys.argv[1], int(sys.argv[2])
built = MaskSqlPipeline().stages()
stages = [built["ExecuteConcreteSql"], built["CalcExecAcc"]]
engine = Pipeline(stages, RunOptions(progress=False, workers=workers))
asyncio.run(engine.run(folder + "/13_AddConcreteSql.json"))
print(json.dumps({
    "stages": sum(report.duration for report in engine.reports),
    "each": {report.name: report.duration for report in engine.reports},
    "wall": time.perf_counter() - t0,
}))
"""


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _later_files(folder: str, names: list[str]) -> list[str]:
    """What a copy leaves out: bookkeeping and every stage file after 1_input.json."""
    return [n for n in names if n == ".masksql_pipe" or (n[0].isdigit() and n != "1_input.json")]


def prepare(data: Path, work: Path) -> Path:
    """Run the default pipeline with the oracle on a copy of ``data``; the copy's path."""
    copy = work / "pipeline"
    shutil.copytree(data, copy, ignore=_later_files)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--data", str(copy), "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not (copy / SOURCE).is_file():
        sys.exit(f"the default pipeline failed on {copy}:\n{done.stderr[-2000:]}")
    print(f"default pipeline on a copy of {data}: {time.perf_counter() - started:.1f} s")
    return copy


def measure(pipeline: Path, work: Path, workers: int, run: int) -> tuple[dict, Path]:
    """One whole process over a fresh folder holding the input file; its figures and folder."""
    folder = work / f"w{workers}_{run}"
    folder.mkdir()
    shutil.copy2(pipeline / SOURCE, folder / SOURCE)
    shutil.copy2(pipeline / "tables.json", folder / "tables.json")
    (folder / "databases").symlink_to(pipeline / "databases")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(workers)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"run with {workers} workers failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEVSET)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="compared with 1 (default 2)")
    args = parser.parse_args()
    settings = (1, args.workers)
    with tempfile.TemporaryDirectory(prefix="bench_workers_") as tmp:
        work = Path(tmp)
        pipeline = prepare(args.data, work)
        rows = len(json.loads((pipeline / SOURCE).read_bytes()))
        print(f"{rows} rows; os.cpu_count() {os.cpu_count()}; loadavg before {loadavg()}")
        times: dict[int, list[dict]] = {n: [] for n in settings}
        reference: dict[str, bytes] = {}
        for run in range(args.repeat):
            for workers in settings if run % 2 == 0 else settings[::-1]:
                figures, folder = measure(pipeline, work, workers, run)
                times[workers].append(figures)
                for name in OUTPUTS:
                    data = (folder / name).read_bytes()
                    if reference.setdefault(name, data) != data:
                        sys.exit(f"{name} differs with {workers} workers")
                shutil.rmtree(folder)
        if reference[OUTPUTS[0]] != (pipeline / OUTPUTS[0]).read_bytes():
            sys.exit(f"{OUTPUTS[0]} differs from the default pipeline's own")
        print(f"loadavg after {loadavg()}")
        summary = {}
        for workers in settings:
            stage = [t["stages"] for t in times[workers]]
            wall = [t["wall"] for t in times[workers]]
            summary[workers] = (
                min(stage),
                statistics.median(stage),
                min(wall),
                statistics.median(wall),
            )
            each = {
                name: round(statistics.median(t["each"][name] for t in times[workers]), 3)
                for name in times[workers][0]["each"]
            }
            print(
                f"--workers {workers}: two stages min {summary[workers][0]:.3f} s, median "
                f"{summary[workers][1]:.3f} s (each, median: {each}); whole process min "
                f"{summary[workers][2]:.3f} s, median {summary[workers][3]:.3f} s"
            )
        one, many = summary[1], summary[args.workers]
        print(
            f"speed-up of --workers {args.workers} over --workers 1: two stages "
            f"{one[0] / many[0]:.2f}x (min), {one[1] / many[1]:.2f}x (median); whole process "
            f"{one[2] / many[2]:.2f}x (min), {one[3] / many[3]:.2f}x (median); outputs identical"
        )


if __name__ == "__main__":
    main()
