"""Benchmark of the ``hazmat`` command's start-up against the bare interpreter. Not a timed test.

Each figure is the median wall time of whole processes, measured in one run, A B A B ...
so drift of the machine hits both sides alike:

- ``python_ms``: ``python3 -c pass`` (the raw baseline);
- ``help_ms``: ``hazmat --help``; ``help_ratio_vs_python`` = help / python (target <= 4);
- ``runs_ms``: ``hazmat runs DIR`` over a folder of two recorded runs;
  ``runs_ratio_vs_python``;
- ``verify_ms``: ``hazmat verify RUN`` on one of them; ``verify_ratio_vs_python``;
- ``floor_ms``: the stack's own floor for a command that reads a record: a process that
  builds and uses one pydantic model and does nothing else (no parser, no hazmat code);
  ``floor_ratio_vs_python``. ``runs`` and ``verify`` read records, which are pydantic
  models (DESIGN.md), so they cannot start faster than this.

The command runs as ``python3 -m hazmat.cli`` with the same interpreter as the baseline
(an installed ``hazmat`` script adds only the interpreter's own start), with bytecode
caches written as a user's first run writes them (``PYTHONDONTWRITEBYTECODE`` is dropped
from the timed commands' environment; a warm-up run of each command comes first).

Prints the figures, then a last line of JSON.

    python bench/cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


FLOOR = (
    "from pydantic import BaseModel\n"
    "class Record(BaseModel):\n"
    "    n: int\n"
    "Record.model_validate({'n': 1})\n"
)
"""The floor: one pydantic record built and read, nothing else (no parser, no hazmat)."""


def _env() -> dict[str, str]:
    """The environment of the timed commands: as a user's shell has it, with bytecode
    caches (a ``PYTHONDONTWRITEBYTECODE`` left in a CI or sandbox environment would make
    every start compile hazmat's modules from source, ~20 ms of each figure)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _wall(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        argv,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - t0


def _record_runs(out: Path) -> Path:
    """Two small runs on the local backend; returns one run directory."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    for agent in ("solution", "null"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "hazmat.cli",
                "run",
                "tasks/examples/find-file",
                "--agent",
                agent,
                "--sandbox",
                "local",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    return sorted(p for p in out.iterdir() if (p / "run.json").is_file())[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hazmat-bench-cli-") as tmp:
        out = Path(tmp) / "runs"
        run_dir = _record_runs(out)
        cmd = [sys.executable, "-m", "hazmat.cli"]
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "help": [*cmd, "--help"],
            "runs": [*cmd, "runs", str(out)],
            "verify": [*cmd, "verify", str(run_dir)],
            "floor": [sys.executable, "-c", FLOOR],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the file cache, write the bytecode caches
            _wall(argv, ROOT)
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(_wall(argv, ROOT))
    ms = {name: round(statistics.median(s) * 1000, 1) for name, s in samples.items()}
    figures: dict[str, float] = {f"{name}_ms": value for name, value in ms.items()}
    for name in ("help", "runs", "verify", "floor"):
        figures[f"{name}_ratio_vs_python"] = round(ms[name] / ms["python"], 2)
    for key, value in figures.items():
        print(f"{key:24} {value}")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
