"""Checks made before a run directory exists: can every planned episode start here?

A run that cannot start should say so at once, in one line per problem, and leave
nothing behind; not make a run directory whose every episode ends ``error``::

    found = preflight(tasks, agents, backend="auto", base_url=None)
    found.problems   # ["agent openai:x needs OPENAI_API_KEY (export OPENAI_API_KEY, ...)"]
    found.warnings   # ["--base-url http://127.0.0.1:9/v1 does not answer (...)"]

Checked: the API key of every ``PROVIDER:MODEL`` agent; tasks that need Docker when
the backend is ``local`` (services, loosened hardening, a network: an environment of
its own, ``sandbox.build``, runs on both backends); for episodes that go to local with
an environment not made yet, that this machine can make its root file system (Docker,
or mmdebstrap for package lists); for episodes that go to Docker, the daemon and the
sandbox image (built on the spot with ``build=True``); whether ``--base-url`` answers
(a warning: the server may come up later).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hazmat.errors import HazmatError

if TYPE_CHECKING:
    from hazmat.agents.models import Agent
    from hazmat.tasks.spec import Task

__all__ = ["Preflight", "backend_for", "docker_why", "preflight"]


@dataclass
class Preflight:
    """What :func:`preflight` found: problems stop the run, warnings do not."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the run can start."""
        return not self.problems


def preflight(
    tasks: list[Task],
    agents: list[Agent],
    *,
    backend: str,
    base_url: str | None = None,
    build: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Preflight:
    """Check that every planned episode can start on this machine (see the module docs).

    ``build`` builds a missing or stale sandbox image instead of reporting it.
    Never raises for what it finds; each finding is one line.
    """
    found = Preflight()
    for agent in agents:
        problem = agent.missing_key()
        if problem:
            found.problems.append(problem)
    if backend == "local":
        for task in tasks:
            if task.needs_docker:
                found.problems.append(
                    f"task {task.id} needs docker ({docker_why(task)}) but --sandbox is local "
                    "(use --sandbox auto or --sandbox docker)"
                )
    _check_local_environments(found, [t for t in tasks if backend_for(t, backend) == "local"])
    if any(backend_for(t, backend) == "docker" for t in tasks):
        _check_docker(found, build=build, progress=progress)
    if base_url:
        why = _unanswered(base_url)
        if why:
            found.warnings.append(f"--base-url {base_url} does not answer ({why})")
    return found


def backend_for(task: Task, backend: str) -> str:
    """The backend an episode of ``task`` runs on: ``auto`` gives docker to a task that
    needs it (services, loosened hardening, a network) and local to the rest; any other
    name is used as is."""
    if backend == "auto":
        return "docker" if task.needs_docker else "local"
    return backend


def docker_why(task: Task) -> str:
    """Why a task needs the docker backend, in a few words."""
    hard = task.sandbox.hardening
    why = []
    if task.sandbox.services:
        why.append("services: " + ", ".join(task.sandbox.services))
    if not hard.read_only_root or not hard.no_new_privileges or hard.cap_add:
        why.append("loosened hardening")
    if task.sandbox.network != "none":
        why.append(f"network: {task.sandbox.network}")
    return "; ".join(why) or "the task says so"


def _check_local_environments(found: Preflight, tasks: list[Task]) -> None:
    """A problem for each task environment the local backend could not make here: not
    cached, no Docker daemon, and a Dockerfile recipe (or no mmdebstrap)."""
    import shutil

    from hazmat.sandbox.rootfs import cached_rootfs
    from hazmat.tasks.environment import environment_of

    docker: bool | None = None
    for task in tasks:
        build = getattr(task.sandbox, "build", None)
        if build is None:
            continue
        try:
            env = environment_of(build)
        except HazmatError as exc:
            found.problems.append(f"task {task.id}: {exc.one_line()}")
            continue
        if cached_rootfs(env.hash) is not None:
            continue
        if docker is None:
            try:
                from hazmat.sandbox.docker.image import docker_client

                docker_client(timeout=10).close()
                docker = True
            except HazmatError:
                docker = False
        if docker:
            continue
        if build.dockerfile is not None:
            found.problems.append(
                f"task {task.id}: its environment {env.hash} is a Dockerfile; the local "
                "backend needs Docker to make its root file system (start Docker)"
            )
        elif shutil.which("mmdebstrap") is None:
            found.problems.append(
                f"task {task.id}: no Docker and no mmdebstrap to make its environment "
                f"{env.hash} (start Docker, or apt-get install -y mmdebstrap)"
            )


def _check_docker(found: Preflight, *, build: bool, progress: Callable[[str], None] | None) -> None:
    try:
        from hazmat.sandbox.docker.image import BUILD_FIX, build_image, docker_client, image_status

        client = docker_client(timeout=10)
        status = image_status(client)
    except HazmatError as exc:
        found.problems.append(f"docker: {exc.one_line()}")
        return
    if status.current:
        return
    if build:
        try:
            build_image(client=client, progress=progress or (lambda _: None))
        except HazmatError as exc:
            found.problems.append(f"docker: {exc.one_line()}")
        return
    if not status.present:
        found.problems.append(
            "the Docker sandbox image is missing (build it with `hazmat image build`, "
            "or pass --build)"
        )
    else:
        found.warnings.append(f"the Docker sandbox image is older than this hazmat ({BUILD_FIX})")


def _unanswered(url: str, timeout: float = 2.0) -> str | None:
    """Why nothing answers at ``url``'s host and port, or None when a connection opens."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "not a URL"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__
