"""Test helpers for the record: an independent recomputation of the hash chain.

Written from the contract in DESIGN.md / issue 3, deliberately *not* using
hazmat.record's own functions, so a bug there cannot hide itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def recompute_chain(events_file: Path) -> list[dict[str, Any]]:
    """Parse every line, check seq/prev/hash by the contract; return the events."""
    prev = "0" * 64
    out: list[dict[str, Any]] = []
    data = events_file.read_bytes()
    assert data.endswith(b"\n"), "events.jsonl must end with a newline"
    for i, line in enumerate(data.split(b"\n")[:-1]):
        event = json.loads(line.decode("utf-8"))
        stored = event.pop("hash")
        assert event["seq"] == i, f"line {i + 1}: seq {event['seq']} != {i}"
        assert event["prev"] == prev, f"line {i + 1}: prev does not link"
        body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(body.encode("utf-8")).hexdigest() == stored, f"line {i + 1}: hash"
        for key in ("seq", "ts", "run_id", "episode_id", "event", "prev"):
            assert key in event, f"line {i + 1}: no {key}"
        prev = stored
        event["hash"] = stored
        out.append(event)
    return out
