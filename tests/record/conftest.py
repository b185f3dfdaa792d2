"""Every record test writes its seal log (and looks for a signing key) in a temporary
folder, never in the user's data directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmat.record.seals import SEAL_KEY_ENV, SEAL_LOG_ENV


@pytest.fixture(scope="session", autouse=True)
def private_seal_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``HAZMAT_SEAL_LOG``/``HAZMAT_SEAL_KEY`` point into a session temp folder (no key)."""
    base = tmp_path_factory.mktemp("seals")
    saved = {k: os.environ.get(k) for k in (SEAL_LOG_ENV, SEAL_KEY_ENV)}
    os.environ[SEAL_LOG_ENV] = str(base / "seals.jsonl")
    os.environ[SEAL_KEY_ENV] = str(base / "no-key" / "seal.key")
    yield base
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(autouse=True)
def seal_log_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Record tests reuse run ids ("r1"): each test gets a seal log of its own."""
    path = tmp_path / "seal-log" / "seals.jsonl"
    monkeypatch.setenv(SEAL_LOG_ENV, str(path))
    return path
