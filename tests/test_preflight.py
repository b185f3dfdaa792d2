"""Preflight (``hazmat.preflight``): a task with its own environment (``sandbox.build``) is
no longer sent to Docker for it; the local backend is refused only what it cannot make.

Issue 15, failure 4 (one environment on both backends).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmat.preflight import backend_for, preflight
from hazmat.sandbox.local.host import rmtree
from hazmat.tasks import load_task
from hazmat.tasks.spec import Task

from .tasks.helpers import write_task

pytestmark = pytest.mark.timeout(60)

TASK = """\
id: t/BUILDNAME
title: an environment of its own
category: examples
instructions: nothing
sandbox:
  build: BUILD
tools: [bash, submit]
milestones:
  - id: m
    check: {submission: "x"}
"""


def _task(tmp_path: Path, name: str, build: str, files: dict[str, str] | None = None) -> Task:
    text = TASK.replace("BUILDNAME", name).replace("BUILD", build)
    return load_task(write_task(tmp_path / name, text, files))


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty rootfs cache the sandbox's ids can reach (pytest's tmp_path is private
    to root: as root, a cache there is refused)."""
    folder = Path(tempfile.mkdtemp(prefix="hazmat-preflight-test-", dir="/var/tmp"))
    os.chmod(folder, 0o755)
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(folder / "cache"))
    yield folder / "cache"
    rmtree(folder)


@pytest.fixture
def no_docker_nothing_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_cache: Path
) -> None:
    """A machine whose Docker daemon does not answer, with an empty rootfs cache."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


def test_a_build_task_goes_to_local(tmp_path: Path) -> None:
    task = _task(tmp_path, "pkgs", "{apt: [tree]}")
    assert not task.needs_docker
    assert backend_for(task, "auto") == "local"


def test_local_is_refused_only_what_it_cannot_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_docker_nothing_cached: None
) -> None:
    pkgs = _task(tmp_path, "pkgs", "{apt: [tree]}")
    dockerfile = _task(
        tmp_path,
        "file",
        "{dockerfile: env/Dockerfile}",
        {"env/Dockerfile": "ARG SANDBOX\nFROM ${SANDBOX}\n"},
    )
    found = preflight([pkgs, dockerfile], [], backend="auto")
    assert len(found.problems) == 1, found.problems
    assert found.problems[0].startswith("task t/file: its environment ")
    assert "is a Dockerfile; the local backend needs Docker" in found.problems[0]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mmdebstrap either
    found = preflight([pkgs], [], backend="local")
    assert found.problems == [
        f"task t/pkgs: no Docker and no mmdebstrap to make its environment "
        f"{_env_hash(pkgs)} (start Docker, or apt-get install -y mmdebstrap)"
    ]


def _env_hash(task: Task) -> str:
    from hazmat.tasks.environment import environment_of

    assert task.sandbox.build is not None
    return environment_of(task.sandbox.build).hash


@pytest.mark.docker
def test_with_docker_nothing_is_refused(tmp_path: Path, empty_cache: Path) -> None:
    dockerfile = _task(
        tmp_path,
        "file",
        "{dockerfile: env/Dockerfile}",
        {"env/Dockerfile": "ARG SANDBOX\nFROM ${SANDBOX}\n"},
    )
    assert preflight([dockerfile], [], backend="local").problems == []


@pytest.mark.skipif(os.geteuid() != 0, reason="a cache another user owns: run as root")
def test_a_cache_another_user_owns_is_one_problem(tmp_path: Path, empty_cache: Path) -> None:
    """The rootfs cache folder belongs to uid 65534 (who could swap the trees): the local
    run is refused before it starts, with one line; Docker-only runs do not care."""
    empty_cache.mkdir()
    os.chown(empty_cache, 65534, 65534)
    pkgs = _task(tmp_path, "pkgs", "{apt: [tree]}")
    found = preflight([pkgs], [], backend="local")
    assert len(found.problems) == 1, found.problems
    assert found.problems[0].startswith(f"local: HAZMAT_ROOTFS_CACHE={empty_cache} ")
    assert "owned by uid 65534" in found.problems[0]
