"""Per-event cost of Recorder.emit (redaction, chaining, write + fsync), against a raw
os.write + os.fsync of a line of the same size in the same process.

    python bench/record.py [--events N] [--dir DIR]

Prints a table, then one JSON line (last line) with median and p99 in ms.
Not a timed test: numbers depend on the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from hazmat.record import Recorder


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _step(ep: object, i: int) -> list[tuple[str, dict[str, object]]]:
    return [
        ("tool_call", {"id": f"c{i}", "tool": "bash", "args": {"command": f"ls -la /tmp/{i}"}}),
        ("policy_decision", {"stage": "before", "action": "allow", "rules": [], "step": i}),
        (
            "tool_result",
            {
                "id": f"c{i}",
                "exit_code": 0,
                "duration": 0.004,
                "timed_out": False,
                "truncated": False,
                "stdout": "total 0\n" + "drwx file\n" * 20,
                "stderr": "",
            },
        ),
        ("policy_decision", {"stage": "after", "action": "allow", "rules": [], "step": i}),
        (
            "model_call",
            {
                "messages": [],
                "response": {"content": "next"},
                "usage": {"input_tokens": 100, "output_tokens": 10},
                "latency": 0.01,
            },
        ),
    ]


def bench_emit(base: Path, n: int, fsync: bool) -> tuple[list[float], int]:
    rec = Recorder.create(base, fsync=fsync)
    ep = rec.bind("bench")
    ep.start(task_id="bench", agent="scripted")
    times: list[float] = []
    size = 0
    i = 0
    while len(times) < n:
        for name, fields in _step(ep, i):
            t = time.perf_counter()
            ev = ep.emit(name, **fields)
            times.append(time.perf_counter() - t)
            size += len(json.dumps(ev))
        i += 1
    rec.finish()
    return times, size // len(times)


def bench_raw(base: Path, n: int, line_size: int) -> list[float]:
    fd = os.open(base / "raw.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    line = b"x" * (line_size - 1) + b"\n"
    times: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        os.write(fd, line)
        os.fsync(fd)
        times.append(time.perf_counter() - t)
    os.close(fd)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        bench_emit(base, 100, True)  # warm up
        emit, line_size = bench_emit(base, args.events, True)
        raw = bench_raw(base, args.events, line_size)
        nofsync, _ = bench_emit(base, args.events, False)
    ms = 1000.0
    res = {
        "events": args.events,
        "avg_line_bytes": line_size,
        "emit_fsync_median_ms": round(statistics.median(emit) * ms, 4),
        "emit_fsync_p99_ms": round(_pct(emit, 0.99) * ms, 4),
        "raw_write_fsync_median_ms": round(statistics.median(raw) * ms, 4),
        "raw_write_fsync_p99_ms": round(_pct(raw, 0.99) * ms, 4),
        "emit_nofsync_median_ms": round(statistics.median(nofsync) * ms, 4),
        "emit_nofsync_p99_ms": round(_pct(nofsync, 0.99) * ms, 4),
    }
    res["ratio_emit_to_raw_median"] = round(
        res["emit_fsync_median_ms"] / res["raw_write_fsync_median_ms"], 3
    )
    res["overhead_over_raw_median_ms"] = round(
        res["emit_fsync_median_ms"] - res["raw_write_fsync_median_ms"], 4
    )
    res["per_step_5_events_median_ms"] = round(res["emit_fsync_median_ms"] * 5, 3)
    print(f"{'':28}{'median ms':>12}{'p99 ms':>12}")
    print(f"{'emit (fsync on)':28}{res['emit_fsync_median_ms']:>12}{res['emit_fsync_p99_ms']:>12}")
    print(
        f"{'raw write+fsync (baseline)':28}{res['raw_write_fsync_median_ms']:>12}"
        f"{res['raw_write_fsync_p99_ms']:>12}"
    )
    print(
        f"{'emit (fsync off)':28}{res['emit_nofsync_median_ms']:>12}"
        f"{res['emit_nofsync_p99_ms']:>12}"
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
