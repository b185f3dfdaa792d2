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
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmat.record.seals import SEAL_KEY_ENV, SEAL_LOG_ENV


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


@pytest.fixture(scope="session", autouse=True)
def private_seal_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every run a test makes (in-process or through the ``hazmat`` command, which inherits
    the environment) seals into a session temp folder, never the user's seal log; no key."""
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
