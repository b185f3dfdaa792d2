"""Fixtures of the importer tests: the shared benchmark data, located like CI does.

``HAZMAT_BENCHMARKS`` names the folder; otherwise it is ``../shared/benchmarks`` next to
the repository. Tests that need it skip, saying where they looked, when it is absent (a
plain clone).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def benchmarks_dir() -> Path:
    """Where the shared benchmark data is expected."""
    env = os.environ.get("HAZMAT_BENCHMARKS")
    return Path(env) if env else (REPO.parent / "shared" / "benchmarks").resolve()


@pytest.fixture
def benchmarks() -> Path:
    """The shared benchmark folder; skips the test when it is not there."""
    folder = benchmarks_dir()
    if not (folder / "intercode-ctf").is_dir() or not (folder / "cybench").is_dir():
        pytest.skip(
            f"the shared benchmark data is not at {folder} (a plain clone; set "
            "HAZMAT_BENCHMARKS to the folder holding intercode-ctf/ and cybench/)"
        )
    return folder
