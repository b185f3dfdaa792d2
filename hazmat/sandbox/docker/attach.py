"""A shell in a box container kept by ``--keep-on-halt`` or ``hazmat replay --keep``.

The box keeps running (or stays paused) after the process that made it detached
(:meth:`DockerSandbox.detach`). :func:`attach` opens an interactive shell in it as the
sandbox user (label ``hazmat.user``, set by the replay), in its working directory: it
is what ``hazmat sandbox shell --attach CONTAINER`` calls. Only containers hazmat made
(label ``hazmat=1``) are accepted; a paused one (frozen on halt) is unpaused first.
Remove it afterwards with ``hazmat cleanup --run <run id>``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any

from hazmat.errors import ConfigError, ReplayError

__all__ = ["attach", "attach_command"]


def _container(container: str) -> tuple[Any, Any]:
    from hazmat.sandbox.docker.image import docker_client

    client = docker_client(timeout=30)
    import docker.errors

    try:
        c = client.containers.get(container)
    except docker.errors.NotFound:
        client.close()
        raise ReplayError(
            f"no container {container!r}", hint="it was removed (hazmat cleanup) or never kept"
        ) from None
    labels = c.labels or {}
    if labels.get("hazmat") != "1":
        client.close()
        raise ConfigError(f"container {container!r} was not made by hazmat (no hazmat=1 label)")
    return client, c


def attach_command(
    container: str, *, user: str | None = None, shell: str = "/bin/bash"
) -> list[str]:
    """The ``docker exec`` argv that opens a shell in a kept hazmat container.

    Unpauses the container when it is paused.

    Raises:
        ReplayError: the container is gone or has stopped.
        ConfigError: the container was not made by hazmat.
        BackendUnavailableError: the Docker daemon cannot be reached.
    """
    client, c = _container(container)
    try:
        state = c.attrs.get("State") or {}
        if state.get("Paused"):
            c.unpause()
        elif not state.get("Running"):
            raise ReplayError(
                f"container {container} has stopped ({state.get('Status')})",
                hint="replay again with --keep",
            )
        cfg = c.attrs.get("Config") or {}
        labels = c.labels or {}
        default = cfg.get("User") if cfg.get("User") not in (None, "", "0", "0:0") else "agent"
        who = user or labels.get("hazmat.user") or default
        workdir = cfg.get("WorkingDir") or "/"
        tty = ["-it"] if sys.stdin.isatty() and sys.stdout.isatty() else ["-i"]
        return [
            "docker",
            "exec",
            *tty,
            "-u",
            str(who),
            "-w",
            str(workdir),
            "-e",
            "TERM",
            str(c.id),
            shell,
        ]
    finally:
        client.close()


def attach(container: str, *, user: str | None = None, shell: str = "/bin/bash") -> int:
    """Open an interactive shell in a kept hazmat container; returns the shell's exit code.

    Uses the ``docker`` CLI for a real terminal; without it, runs each input line
    with one ``docker exec`` (no terminal, no state between lines).

    Raises:
        ReplayError: the container is gone or has stopped.
        ConfigError: the container was not made by hazmat.
        BackendUnavailableError: the Docker daemon cannot be reached.
    """
    argv = attach_command(container, user=user, shell=shell)
    if shutil.which("docker"):
        return subprocess.call(argv)
    client, c = _container(container)
    try:
        rc = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            res = c.exec_run(["/bin/sh", "-c", line], user=argv[argv.index("-u") + 1], demux=True)
            out, err = res.output
            sys.stdout.buffer.write(out or b"")
            sys.stdout.buffer.write(err or b"")
            sys.stdout.flush()
            rc = int(res.exit_code or 0)
        return rc
    finally:
        client.close()
