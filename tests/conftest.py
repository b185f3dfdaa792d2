"""Shared test setup.

Tests marked ``docker`` need a reachable Docker daemon. Without one they are
skipped, unless ``HAZMAT_REQUIRE_DOCKER=1`` (set by ``.ci/run``): then they fail,
so CI never passes by skipping the Docker half of the suite.
"""

from __future__ import annotations

import functools
import os

import pytest


@functools.cache
def docker_problem() -> str | None:
    """Why Docker tests cannot run here, or None when the daemon answers."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"Docker daemon not reachable: {type(exc).__name__}: {exc}"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker") is None:
        return
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("HAZMAT_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{problem} (HAZMAT_REQUIRE_DOCKER=1: Docker tests must run)")
    pytest.skip(problem)
