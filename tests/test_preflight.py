"""Preflight (``hazmat.preflight``): a task with its own environment (``sandbox.build``) is
no longer sent to Docker for it; the local backend is refused only what it cannot make.

Issue 15, failure 4 (one environment on both backends).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmat.preflight import backend_for, preflight
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
def no_docker_nothing_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose Docker daemon does not answer, with an empty rootfs cache."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(tmp_path / "cache"))


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
def test_with_docker_nothing_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(tmp_path / "cache"))
    dockerfile = _task(
        tmp_path,
        "file",
        "{dockerfile: env/Dockerfile}",
        {"env/Dockerfile": "ARG SANDBOX\nFROM ${SANDBOX}\n"},
    )
    assert preflight([dockerfile], [], backend="local").problems == []
