"""Rebuilding a benchmark's docker-compose services on the hazmat base, offline.

Benchmark services build ``FROM python:3.9-slim``, ``FROM alpine``, ``FROM ubuntu`` ...:
registry images that cannot be pulled here. :func:`rewrite_service` rewrites such a
service's Dockerfile to build ``FROM ${BASE}`` (``hazmat-base:bookworm``, Debian
bookworm), listing every change it makes:

- the base becomes Debian bookworm; a Python image's interpreter becomes Debian's
  ``python3`` (with ``python``, ``/usr/local/bin/python`` and ``python3`` linked to it);
- ``apk add`` packages are translated to Debian names, ``apt-get install`` lines kept,
  one ``apt-get install`` layer made up front (plus netcat for the health check);
- ``pip install`` packages (and ``-r requirements.txt``) are downloaded now, as wheels,
  into the service folder, and installed from there with ``--no-index``;
- every other instruction (``COPY``, ``WORKDIR``, ``USER``, ``CMD``, other ``RUN``
  commands) is kept in order.

A service that cannot be rebuilt this way (a multi-stage toolchain build, a ``RUN`` that
downloads from the network) raises :class:`CannotRebuild` with the reason.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "APK_TO_DEBIAN",
    "CannotRebuild",
    "RebuiltService",
    "debian_has",
    "pip_resolves",
    "rewrite_service",
]

APK_TO_DEBIAN = {
    "build-base": "build-essential",
    "musl-dev": "libc6-dev",
    "linux-headers": "linux-libc-dev",
    "py3-pip": "python3-pip",
    "python3-dev": "python3-dev",
    "pcre-dev": "libpcre3-dev",
    "pcre": "libpcre3",
    "openssl-dev": "libssl-dev",
    "libffi-dev": "libffi-dev",
    "netcat-openbsd": "netcat-openbsd",
    "gmp-dev": "libgmp-dev",
}
"""Alpine package -> Debian package, where the names differ (others are kept)."""

_KNOWN_BASES = re.compile(r"^(python|debian|ubuntu|alpine|buildpack-deps)(:|$)")
_NETWORK = re.compile(r"\b(wget|curl|git\s+clone)\b")
_PIP = re.compile(r"^(?:python3?\s+-m\s+)?pip3?\s+install\b")


class CannotRebuild(Exception):
    """The service cannot be rebuilt on the hazmat base; the message says why."""


@dataclass
class RebuiltService:
    """The rewritten Dockerfile and what changed."""

    dockerfile: str
    original_from: str
    changes: list[str] = field(default_factory=list)
    user: str | None = None
    """The last ``USER`` of the Dockerfile (hazmat runs services as root otherwise)."""
    wheels: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        parts = buf.strip().split(None, 1)
        out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
        buf = ""
    if buf.strip():
        parts = buf.strip().split(None, 1)
        out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
    return out


def _split_commands(run: str) -> list[str]:
    return [c.strip() for c in re.split(r"&&|;", run) if c.strip()]


def _packages(words: list[str]) -> list[str]:
    return [w for w in words if not w.startswith("-")]


def _pip_requirements(cmd: str, context: Path) -> list[str]:
    words = shlex.split(cmd)
    start = next(i for i, w in enumerate(words) if w == "install") + 1
    reqs: list[str] = []
    it = iter(words[start:])
    for w in it:
        if w in ("-r", "--requirement"):
            path = context / next(it, "")
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    line = line.split("#", 1)[0].strip()
                    if line and not line.startswith("-"):
                        reqs.append(line)
        elif w in ("-i", "--index-url", "--extra-index-url", "-f", "--find-links"):
            next(it, None)
        elif not w.startswith("-"):
            reqs.append(w)
    return reqs


def debian_has(packages: list[str]) -> dict[str, bool] | None:
    """Which ``packages`` this machine's apt knows a candidate for (the sandbox image is
    Debian bookworm from the same mirror); None when apt cannot tell (not Debian)."""
    if not packages or shutil.which("apt-cache") is None:
        return None
    res = subprocess.run(
        ["apt-cache", "policy", *packages], capture_output=True, text=True, timeout=120, check=False
    )
    found: dict[str, bool] = {p: False for p in packages}
    current = None
    for line in res.stdout.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
        elif current in found and line.strip().startswith("Candidate:"):
            found[current] = line.split(":", 1)[1].strip() != "(none)"
    return found


def pip_resolves(requirements: list[str]) -> str | None:
    """None when ``requirements`` resolve together for bookworm's Python 3.11 on x86_64 (a
    dry run against PyPI, wheels only: nothing of a package runs here); else pip's
    complaint. A requirement that has no wheel at all is left out of the check (it is
    built from source in the image)."""
    reqs = list(requirements)
    for _ in range(len(reqs) + 1):
        why = _dry_run(reqs)
        m = re.search(r"No matching distribution found for (\S+)", why or "")
        if m is None:
            return why
        reqs = [r for r in reqs if r != m.group(1)]
    return None


def _dry_run(requirements: list[str]) -> str | None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--only-binary=:all:",
            "--platform=manylinux2014_x86_64",
            "--platform=manylinux_2_28_x86_64",
            "--python-version=3.11",
            "--implementation=cp",
            "--target",
            tmp,
            *requirements,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if res.returncode == 0:
        return None
    lines = [ln for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
    return lines[-1] if lines else f"pip exited {res.returncode}"


def download_wheels(requirements: list[str], dest: Path) -> list[str]:
    """Download ``requirements`` (and their dependencies) for Debian bookworm's Python
    3.11 on x86_64 into ``dest``, wheels where they exist, else source archives.
    Returns the file names.

    Raises:
        CannotRebuild: a requirement cannot be downloaded.
    """
    dest.mkdir(parents=True, exist_ok=True)
    platform = [
        f"--platform={p}"
        for p in (
            "manylinux2014_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux_2_28_x86_64",
            "manylinux_2_31_x86_64",
            "linux_x86_64",
        )
    ]
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
    binary = [*base, "--only-binary=:all:", *platform, "--python-version=3.11"]
    binary += ["--implementation=cp"]

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)

    if requirements and run([*binary, *requirements]).returncode != 0:
        for req in requirements:
            if run([*binary, req]).returncode == 0:
                continue
            res = run([*base, "--no-binary=:all:", "--no-deps", req])
            if res.returncode != 0:
                tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["?"]
                raise CannotRebuild(f"pip cannot download {req}: {tail[0]}")
    return sorted(p.name for p in dest.iterdir())


def rewrite_service(context: Path, dockerfile: Path, out: Path) -> RebuiltService:
    """Copy the build ``context`` into ``out`` and rewrite ``dockerfile`` there to build
    on the hazmat base (see the module doc); wheels go to ``out/wheels``.

    Raises:
        CannotRebuild: a multi-stage build, an unknown base, or a network download.
    """
    text = dockerfile.read_text(encoding="utf-8")
    steps = _instructions(text)
    froms = [a for i, a in steps if i == "FROM"]
    if len(froms) != 1:
        raise CannotRebuild(f"a multi-stage build ({', '.join(froms)}) needs toolchain images")
    original = froms[0].split()[0]
    if not _KNOWN_BASES.match(original):
        raise CannotRebuild(f"its base {original} has no Debian counterpart here")
    python = original.startswith("python")
    apt: list[str] = ["netcat-openbsd", "procps"]
    if python:
        apt += [
            "python3",
            "python3-pip",
            "python3-setuptools",
            "python3-wheel",
            "python-is-python3",
        ]
    pip: list[str] = []
    changes = [f"FROM {original} -> FROM hazmat-base:bookworm (Debian bookworm)"]
    if python:
        changes.append(f"{original}'s Python -> Debian's python3 (3.11)")
    kept: list[str] = []
    user: str | None = None
    for inst, args in steps:
        if inst in ("FROM", "MAINTAINER", "HEALTHCHECK"):
            continue
        if inst == "USER":
            user = args.strip()
        if inst != "RUN":
            kept.append(f"{inst} {args}")
            continue
        rest: list[str] = []
        for cmd in _split_commands(args):
            if _NETWORK.search(cmd):
                raise CannotRebuild(f"a build step downloads from the network: {cmd[:80]}")
            words = cmd.split()
            if words[:2] in (["apk", "add"],) or (words[:1] == ["apk"] and "add" in words):
                pkgs = _packages(words[words.index("add") + 1 :])
                mapped = [APK_TO_DEBIAN.get(p, p) for p in pkgs]
                apt += [m for m in mapped if m not in ("python3", "py3-pip")]
                changes.append(f"apk add {' '.join(pkgs)} -> apt-get install {' '.join(mapped)}")
            elif words[:1] in (["apk"],) or re.match(
                r"^(apt-get|apt)\s+(update|upgrade|clean)", cmd
            ):
                continue
            elif re.match(r"^(apt-get|apt)\s+(-\S+\s+)*install\b", cmd):
                pkgs = _packages(words[words.index("install") + 1 :])
                apt += [p.split(":")[0] for p in pkgs]
            elif cmd.startswith(
                ("dpkg --add-architecture", "rm -rf /var/lib/apt", "rm -rf /var/cache")
            ):
                changes.append(f"dropped: {cmd[:80]}")
            elif cmd.startswith("echo") and "/etc/apt/" in cmd:
                changes.append(f"dropped: {cmd[:80]} (bookworm's own sources are used)")
            elif _PIP.match(cmd):
                pip += _pip_requirements(cmd, context)
            elif re.search(r"\bpip3?\s+install\b|--pip\s+install\b", cmd):
                raise CannotRebuild(f"a pip install the rewrite cannot make offline: {cmd[:80]}")
            elif re.match(r"^python3?\s+-m\s+venv\b", cmd):
                changes.append(f"dropped: {cmd} (packages go to the system Python)")
            else:
                rest.append(cmd)
        if rest:
            kept.append("RUN " + " && ".join(rest))
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(context, out, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    wheels: list[str] = []
    if pip:
        wheels = download_wheels(pip, out / "hazmat-wheels")
        changes.append(
            f"pip install {' '.join(pip)} -> {len(wheels)} file(s) downloaded into "
            "hazmat-wheels/ and installed offline"
        )
    lines = [
        f"# Rebuilt by hazmat import on the hazmat base (was: FROM {original}).",
        "ARG BASE=hazmat-base:bookworm",
        "FROM ${BASE}",
        "ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8",
        "RUN apt-get update && apt-get install -y --no-install-recommends "
        + " ".join(dict.fromkeys(apt))
        + " && rm -rf /var/lib/apt/lists/*",
    ]
    if python:
        lines.append(
            "RUN ln -sf /usr/bin/python3 /usr/local/bin/python3 "
            "&& ln -sf /usr/bin/python3 /usr/local/bin/python"
        )
    if pip:
        lines += [
            "COPY hazmat-wheels /tmp/hazmat-wheels",
            "RUN python3 -m pip install --no-index --find-links /tmp/hazmat-wheels "
            "--break-system-packages --no-build-isolation "
            + " ".join(shlex.quote(p) for p in dict.fromkeys(pip))
            + " && rm -rf /tmp/hazmat-wheels",
        ]
    lines += kept
    (out / "Dockerfile").write_text("\n".join(lines) + "\n")
    if dockerfile.name != "Dockerfile" and (out / dockerfile.name).exists():
        (out / dockerfile.name).unlink()
    return RebuiltService(
        dockerfile="\n".join(lines) + "\n",
        original_from=original,
        changes=changes,
        user=user,
        wheels=wheels,
    )
