"""What a forger with write access to a run directory does: read the events, change
them, recompute every hash from the contract, and write a run.json that agrees
(with hazmat's own derivation: the forger has the code too).

Written from the hash contract (DESIGN.md), not with the Recorder, so a test that
uses it shows what someone outside hazmat can do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hazmat.record.summary import derive_run_record


def read_events(run: Path) -> list[dict[str, Any]]:
    """The parsed events of a run, in file order (a torn line is skipped)."""
    out = []
    for line in (run / "events.jsonl").read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _canonical(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def write_chain(run: Path, events: list[dict[str, Any]], *, tail: bytes = b"") -> None:
    """Renumber ``seq``, recompute every ``prev``/``hash``, write events.jsonl (+ ``tail``)."""
    prev = "0" * 64
    out = []
    for i, ev in enumerate(events):
        body = {k: v for k, v in ev.items() if k != "hash"}
        body["seq"], body["prev"] = i, prev
        prev = hashlib.sha256(_canonical(body)).hexdigest()
        out.append(_canonical({**body, "hash": prev}))
    (run / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in out) + tail)


def write_run_json(run: Path, *, seal: bool) -> dict[str, Any]:
    """A run.json that says exactly what the (forged) events say; with ``seal`` its seal
    copy names the forged last event, else it is cleared. Returns the data."""
    events = read_events(run)
    data = derive_run_record(events).model_dump(mode="json")
    if seal:
        data["sealed_hash"], data["sealed_seq"] = events[-1]["hash"], events[-1]["seq"]
    (run / "run.json").write_text(json.dumps(data, indent=2))
    return data


def edit_run_json(run: Path, path: str, value: Any) -> None:
    """Set one field of run.json by a dotted path (``episodes.0.halt.rule``)."""
    data = json.loads((run / "run.json").read_text())
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    (run / "run.json").write_text(json.dumps(data, indent=2))
