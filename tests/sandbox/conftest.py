"""Shared setup of the sandbox tests (both backends).

Async tests run on asyncio through anyio's pytest plugin (``pytest.mark.anyio``).
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_image() -> str:
    """The sandbox image, built once (skipped when current)."""
    from hazmat.sandbox.docker.image import build_image

    return build_image().tag
