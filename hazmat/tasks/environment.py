"""A task's environment: the sandbox image plus what the task needs, named by one hash.

task.yaml::

    sandbox:
      build:
        apt: [binutils, xxd, unzip, gcc, gdb]     # Debian packages
        pip: [pycryptodome, gmpy2]                # PyPI packages
    # or
    sandbox:
      build: {dockerfile: env/Dockerfile}         # FROM ${SANDBOX}; its folder is the context

An environment is a *recipe* (the packages, or a Dockerfile folder) on top of the hazmat
sandbox image. Its hash covers the recipe's files and the sandbox image's own content
hash, never a machine's image ids, so the same task has the same environment hash on
every machine and on every backend:

- Docker: the image ``hazmat-env:<hash>``, built offline on the sandbox image
  (through :func:`hazmat.sandbox.docker.image.build_service_image`), cached by that tag;
- local (bubblewrap): the same environment's root file system, cached by the same hash
  (:func:`hazmat.sandbox.rootfs.rootfs_for`): exported from that Docker image when there
  is a daemon, else bootstrapped with mmdebstrap from the recipe's packages (a Dockerfile
  recipe needs Docker). :func:`ensure_environment` makes what the backend runs.

A Dockerfile must build on the sandbox image (``ARG SANDBOX`` / ``FROM ${SANDBOX}``): the
box's supervisor and the ``agent`` user come from it. ``${SANDBOX}`` is pinned to this
hazmat's sandbox image (``hazmat-sandbox:<content-hash>``) when the context is made.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hazmat.sandbox.rootfs import RootfsSource, base_packages, host_ca_bundle, rootfs_for

__all__ = [
    "ENV_REPO",
    "Environment",
    "EnvironmentBuild",
    "check_dockerfile",
    "ensure_environment",
    "environment_of",
    "host_ca_bundle",
    "rootfs_source",
]

log = structlog.get_logger("hazmat.tasks.environment")

ENV_REPO = "hazmat-env"
"""Repository of built task environments (tag: the environment hash)."""
HOST_CA = "hazmat-host-ca.crt"
"""This machine's CA bundle, put in every build context (not hashed): pip inside a build
then trusts the same certificates the host does."""

_APT = re.compile(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9]+)?(=[A-Za-z0-9.+~:-]+)?$")
_PIP = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?([<>=!~]=?[A-Za-z0-9.*+!-]+)?$"
)
_FROM_SANDBOX = re.compile(r"^\s*FROM\s+(\$\{SANDBOX\}|\$SANDBOX)(\s|$)", re.I | re.M)
_FIRST_FROM = re.compile(r"^\s*FROM\s+(\S+)", re.I | re.M)


class EnvironmentBuild(BaseModel):
    """``sandbox.build``: Debian and pip packages, or a Dockerfile, on the sandbox image."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    apt: list[str] = Field(default_factory=list)
    """Debian (bookworm) packages installed on the sandbox image."""
    pip: list[str] = Field(default_factory=list)
    """pip requirements installed on the sandbox image (`python3-pip` comes with them)."""
    dockerfile: str | None = None
    """A Dockerfile (relative to the task folder or a suite ``lib/`` folder; the loader
    makes it absolute). Its folder is the build context."""

    @field_validator("apt")
    @classmethod
    def _apt(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            if not _APT.match(name):
                raise ValueError(f"{name!r} (item {i}) is not a Debian package name")
        return value

    @field_validator("pip")
    @classmethod
    def _pip(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            if not _PIP.match(name):
                raise ValueError(f"{name!r} (item {i}) is not a pip requirement")
        return value

    @model_validator(mode="after")
    def _one(self) -> EnvironmentBuild:
        if self.dockerfile is not None and (self.apt or self.pip):
            raise ValueError("give a dockerfile or package lists (apt, pip), not both")
        if self.dockerfile is None and not (self.apt or self.pip):
            raise ValueError("give a dockerfile or package lists (apt, pip)")
        return self


class Environment(BaseModel):
    """A task environment: its hash, the Docker tag it builds, and its build context."""

    model_config = ConfigDict(frozen=True)

    hash: str
    tag: str
    """``hazmat-env:<hash>``."""
    sandbox_hash: str
    """The content hash of the sandbox image it builds on."""
    recipe: dict[str, list[str] | str]
    """``{"apt": [...], "pip": [...]}`` or ``{"dockerfile": path}`` (for the record and for
    a backend that builds the root file system without Docker)."""
    files: dict[str, bytes] = Field(repr=False)
    """The build context: relative path -> bytes (the Dockerfile included)."""
    modes: dict[str, int] = Field(default_factory=dict, repr=False)


def check_dockerfile(path: Path) -> str:
    """The text of a task's Dockerfile, checked to build on the sandbox image.

    Raises:
        ValueError: unreadable, or its first stage is not ``FROM ${SANDBOX}``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc.__class__.__name__}") from None
    if not _FROM_SANDBOX.search(text):
        first = _FIRST_FROM.search(text)
        raise ValueError(
            f"{path.name} must build FROM ${{SANDBOX}} (the hazmat sandbox image), "
            f"not {first.group(1) if first else 'nothing'}; start it with "
            "ARG SANDBOX and FROM ${SANDBOX}"
        )
    return text


def _generated_dockerfile(build: EnvironmentBuild, sandbox_tag: str) -> str:
    lines = [
        "# A hazmat task environment (generated from sandbox.build): the sandbox image",
        "# plus the task's Debian and pip packages.",
        f"FROM {sandbox_tag}",
        "USER root",
    ]
    apt = sorted(set(build.apt) | ({"python3-pip"} if build.pip else set()))
    if apt:
        lines.append(
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "--no-install-recommends " + " ".join(apt) + " && apt-get clean "
            "&& rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log"
        )
    if build.pip:
        # the build trusts what this machine trusts (a TLS-inspecting proxy's CA, say)
        lines.append(f"COPY {HOST_CA} /tmp/{HOST_CA}")
        lines.append(
            f"RUN if [ -s /tmp/{HOST_CA} ]; then export PIP_CERT=/tmp/{HOST_CA}; fi; "
            "python3 -m pip install --no-cache-dir --break-system-packages "
            + " ".join(sorted(set(build.pip)))
            + f" && rm -f /tmp/{HOST_CA}"
        )
    lines += ["USER agent", "WORKDIR /home/agent", ""]
    return "\n".join(lines)


def _context(folder: Path) -> tuple[dict[str, bytes], dict[str, int]]:
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(folder).as_posix()
            files[rel] = path.read_bytes()
            modes[rel] = path.stat().st_mode & 0o777
    return files, modes


def environment_of(build: EnvironmentBuild, *, sandbox_hash: str | None = None) -> Environment:
    """The environment ``build`` describes, with its hash (nothing is built).

    ``sandbox_hash`` defaults to this hazmat's sandbox image content hash.

    Raises:
        SpecError: the Dockerfile is missing or does not build ``FROM ${SANDBOX}``.
        ImageError: the sandbox Dockerfile cannot be found (for its hash).
    """
    from hazmat.errors import SpecError

    if sandbox_hash is None:
        from hazmat.sandbox.docker.image import content_hash

        sandbox_hash = content_hash()
    sandbox_tag = f"hazmat-sandbox:{sandbox_hash}"
    recipe: dict[str, list[str] | str]
    if build.dockerfile is not None:
        path = Path(build.dockerfile)
        try:
            text = check_dockerfile(path)
        except ValueError as exc:
            raise SpecError(f"sandbox.build.dockerfile: {exc}") from None
        files, modes = _context(path.parent)
        if path.name != "Dockerfile":
            files.pop(path.name, None)
        files["Dockerfile"] = _FROM_SANDBOX.sub(
            lambda m: f"FROM {sandbox_tag}{m.group(2)}", text
        ).encode()
        modes["Dockerfile"] = 0o644
        recipe = {"dockerfile": str(path)}
    else:
        files = {"Dockerfile": _generated_dockerfile(build, sandbox_tag).encode()}
        modes = {"Dockerfile": 0o644}
        recipe = {"apt": sorted(set(build.apt)), "pip": sorted(set(build.pip))}
    h = hashlib.sha256(b"hazmat-env-v1\0" + sandbox_hash.encode() + b"\0")
    for name in sorted(files):
        h.update(f"{name}\0{modes.get(name, 0o644):o}\0{len(files[name])}\0".encode())
        h.update(files[name])
    digest = h.hexdigest()[:16]
    return Environment(
        hash=digest,
        tag=f"{ENV_REPO}:{digest}",
        sandbox_hash=sandbox_hash,
        recipe=recipe,
        files=files,
        modes=modes,
    )


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hazmat" / "environments"


def _build(env: Environment, progress: Callable[[str], None]) -> str:
    """Build ``env`` with Docker unless ``hazmat-env:<hash>`` exists; returns the tag."""
    import docker.errors

    from hazmat.sandbox.docker.image import (
        SANDBOX_REPO,
        build_image,
        build_service_image,
        docker_client,
    )

    def present(ref: str) -> bool:
        try:
            client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        return True

    client = docker_client(timeout=1800)
    try:
        if present(env.tag):
            return env.tag
        if not present(f"{SANDBOX_REPO}:{env.sandbox_hash}"):
            progress(f"building the sandbox image {SANDBOX_REPO}:{env.sandbox_hash} first")
            build_image(client=client, progress=progress)
        folder = _cache_dir() / env.hash
        if folder.exists():
            shutil.rmtree(folder)
        for name, data in env.files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.chmod(target, env.modes.get(name, 0o644))
        (folder / HOST_CA).write_bytes(host_ca_bundle())
        progress(f"building the task environment {env.tag}")
        built = build_service_image(folder, client=client, progress=progress)
        repo, _, tag = env.tag.partition(":")
        client.images.get(built).tag(repo, tag)
        log.info("environment_built", tag=env.tag, recipe=env.recipe)
        return env.tag
    finally:
        client.close()


_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def _build_once(env: Environment, progress: Callable[[str], None]) -> str:
    with _GUARD:
        lock = _LOCKS.setdefault(env.hash, threading.Lock())
    with lock:
        return _build(env, progress)


def rootfs_source(env: Environment) -> RootfsSource:
    """How the local backend gets ``env``'s root file system: Docker's image of it (built
    here when missing), else mmdebstrap of the sandbox Dockerfile's packages plus the
    recipe's (a Dockerfile recipe has no package list: Docker only).

    Raises:
        ImageError: the sandbox Dockerfile cannot be found.
    """
    apt: tuple[str, ...] | None = None
    pip: tuple[str, ...] = ()
    if "dockerfile" not in env.recipe:
        from hazmat.sandbox.docker.image import dockerfile_path

        extra, wanted = env.recipe.get("apt", []), env.recipe.get("pip", [])
        pip = tuple(wanted) if isinstance(wanted, list) else ()
        apt = (
            *base_packages(dockerfile_path().read_text()),
            *(extra if isinstance(extra, list) else ()),
        )
    return RootfsSource(
        hash=env.hash,
        image=env.tag,
        build=lambda progress: _build_once(env, progress),
        apt=apt,
        pip=pip,
    )


async def ensure_environment(
    env: Environment, progress: Callable[[str], None] | None = None, *, backend: str = "docker"
) -> str:
    """Make what ``backend`` runs of ``env``, once even when several episodes ask at the
    same time: the Docker image (built offline; returns its tag) or, for ``local``, the
    root file system (returns its path; see :func:`rootfs_source`).

    Raises:
        BackendUnavailableError: no Docker daemon (docker).
        ImageError: the build failed (a package missing from the mirror, a bad Dockerfile),
            or no way to make the root file system (local: no Docker and no mmdebstrap, or
            a Dockerfile recipe without Docker).
    """
    report = progress or (lambda _: None)
    if backend == "local":
        return str(await asyncio.to_thread(rootfs_for, rootfs_source(env), report))
    return await asyncio.to_thread(_build_once, env, report)
