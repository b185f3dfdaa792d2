"""Shared setup of the sandbox tests (both backends).

Async tests run on asyncio through anyio's pytest plugin (``pytest.mark.anyio``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_image() -> str:
    """The sandbox image, built once (skipped when current)."""
    from hazmat.sandbox.docker.image import build_image

    return build_image().tag


@pytest.fixture
def reachable_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, trusted rootfs cache every user can enter (``0755``, under the sticky
    ``/var/tmp``: the sandbox's ids must reach it), set as ``HAZMAT_ROOTFS_CACHE``."""
    from hazmat.sandbox.local.host import rmtree

    folder = Path(tempfile.mkdtemp(prefix="hazmat-rootfs-test-", dir="/var/tmp"))
    os.chmod(folder, 0o755)
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(folder))
    yield folder
    rmtree(folder)
