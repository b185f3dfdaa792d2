"""Every record test writes its seal log (and looks for a signing key) in a temporary
folder, never in the user's data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmat.record.seals import SEAL_LOG_ENV


@pytest.fixture(autouse=True)
def seal_log_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Record tests reuse run ids ("r1"): each test gets a seal log of its own."""
    path = tmp_path / "seal-log" / "seals.jsonl"
    monkeypatch.setenv(SEAL_LOG_ENV, str(path))
    return path
