"""CLI start-up: `python main.py --help` against a bare `python -c pass`, side by side.

Each command runs as a fresh process, the two alternate, and the script prints the medians,
their difference (what the CLI itself costs) and the ratio. Target: `--help` under 0.5 s.

    python benchmarks/bench_cli.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python main.py --help": [sys.executable, str(ROOT / "main.py"), "--help"],
}


def wall_time(command: list[str]) -> float:
    """Seconds one run of ``command`` takes, output discarded."""
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    for command in COMMANDS.values():  # warm the file cache and the bytecode
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, command in COMMANDS.items():
            times[name].append(wall_time(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:<24} median {median:.3f} s  (min {min(times[name]):.3f} s)")
    bare, help_ = medians["python -c pass"], medians["python main.py --help"]
    print(f"CLI cost {help_ - bare:.3f} s; ratio {help_ / bare:.1f}x; target --help < 0.5 s")


if __name__ == "__main__":
    main()
