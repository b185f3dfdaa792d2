"""Shared test setup.

Tests marked ``docker`` need a reachable Docker daemon and the sandbox image
(built once per session with ``hazmat image build``'s code, a no-op when it is
current). Without them they are skipped, unless ``HAZMAT_REQUIRE_DOCKER=1``
(set by ``.ci/run``): then they fail, so CI never passes by skipping the Docker
half of the suite. Tests marked ``chromium`` need Debian's ``chromium``; likewise
they fail instead of skipping under ``HAZMAT_REQUIRE_CHROMIUM=1``.
"""

from __future__ import annotations

import functools
import os
import shutil

import pytest


@functools.cache
def docker_problem() -> str | None:
    """Why Docker tests cannot run here, or None when the daemon answers and the image is built."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"Docker daemon not reachable: {type(exc).__name__}: {exc}"
    try:
        from hazmat.sandbox.docker.image import build_image

        build_image()
    except Exception as exc:
        return f"the sandbox image cannot be built: {type(exc).__name__}: {exc}"
    return None


def _missing(problem: str | None, require_env: str) -> None:
    if problem is None:
        return
    if os.environ.get(require_env) == "1":
        pytest.fail(f"{problem} ({require_env}=1: these tests must run)")
    pytest.skip(problem)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker") is not None:
        _missing(docker_problem(), "HAZMAT_REQUIRE_DOCKER")
    if item.get_closest_marker("chromium") is not None:
        _missing(
            None if shutil.which("chromium") else "chromium is not installed",
            "HAZMAT_REQUIRE_CHROMIUM",
        )


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (anyio's pytest plugin)."""
    return "asyncio"
