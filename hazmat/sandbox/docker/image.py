"""The sandbox image: build it offline, know whether it is current, build task services.

``hazmat image build`` calls :func:`build_image`, which builds the repository's
``Dockerfile`` (context: that file plus the guest programs, ``hazmat/sandbox/guest``) as
``hazmat-sandbox:<content-hash>`` and ``hazmat-sandbox:latest``. The content hash
covers every file of the build context, so editing the Dockerfile or the
supervisor makes the image stale, and an unchanged tree skips the build.

No registry is needed. The Dockerfile's ``FROM`` is a build argument defaulting to
``hazmat-base:bookworm``; when that base is missing, hazmat first tries to pull
``debian:bookworm`` and, when the pull fails (no registry reachable), bootstraps the
base itself: ``mmdebstrap --variant=minbase bookworm`` from the Debian mirror that
apt uses on this machine, piped into ``docker import``. Progress lines go to the
``progress`` callback.

Task services with a ``build:`` folder are built by :func:`build_service_image`,
offline (never pulling), cached by the folder's content hash.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict

from hazmat.errors import BackendUnavailableError, ImageError
from hazmat.sandbox.guest import program_files

__all__ = [
    "BASE_IMAGE",
    "SANDBOX_REPO",
    "ImageInfo",
    "ImageStatus",
    "bootstrap_base",
    "build_image",
    "build_service_image",
    "content_hash",
    "docker_client",
    "dockerfile_path",
    "image_status",
    "resolve_image",
]

log = structlog.get_logger("hazmat.sandbox.docker.image")

SANDBOX_REPO = "hazmat-sandbox"
"""Repository name of the sandbox image (tags: ``<content-hash>`` and ``latest``)."""
BASE_IMAGE = "hazmat-base:bookworm"
"""The Debian bookworm base the Dockerfile builds on (bootstrapped when missing)."""
PULL_FALLBACK = "debian:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_FIX = "run: hazmat image build"
SERVICE_REPO = "hazmat-service"

Progress = Callable[[str], None]


class ImageInfo(BaseModel):
    """What :func:`build_image` produced."""

    model_config = ConfigDict(frozen=True)

    tag: str
    """``hazmat-sandbox:<content-hash>``."""
    id: str
    content_hash: str
    built: bool
    """False when the image was already current and nothing was built."""
    base: str
    base_bootstrapped: bool = False


class ImageStatus(BaseModel):
    """The sandbox image as ``hazmat doctor`` reports it."""

    model_config = ConfigDict(frozen=True)

    present: bool
    """``hazmat-sandbox:latest`` exists."""
    current: bool
    """``hazmat-sandbox:<content-hash of this tree>`` exists and is ``:latest``."""
    id: str | None
    tag: str
    """The tag the current tree builds (``hazmat-sandbox:<content-hash>``)."""
    base_present: bool
    hint: str | None = None


def _noop(_: str) -> None:
    pass


def docker_client(timeout: int = 120) -> Any:
    """A connected ``docker.DockerClient`` (from the environment, like the CLI).

    Raises:
        BackendUnavailableError: the daemon cannot be reached.
    """
    import docker
    import docker.errors

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        raise BackendUnavailableError(
            f"cannot reach the Docker daemon at {host}: {_short(exc)}",
            hint="start Docker or use --sandbox local",
        ) from None
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else type(exc).__name__


# content hash ----------------------------------------------------------------


def dockerfile_path() -> Path:
    """The sandbox image's ``Dockerfile``, shipped in the package next to this module.

    ``HAZMAT_DOCKERFILE`` overrides it.

    Raises:
        ImageError: no Dockerfile can be found.
    """
    override = os.environ.get("HAZMAT_DOCKERFILE")
    candidates = [Path(override)] if override else []
    candidates.append(Path(__file__).resolve().with_name("Dockerfile"))
    for path in candidates:
        if path.is_file():
            return path
    raise ImageError(
        "the sandbox Dockerfile is missing (looked at "
        + ", ".join(str(p) for p in candidates)
        + ")",
        hint="reinstall hazmat, or set HAZMAT_DOCKERFILE",
    )


def _context_files() -> dict[str, bytes]:
    return {"Dockerfile": dockerfile_path().read_bytes(), **program_files()}


def _hash_files(files: dict[str, bytes], extra: str = "") -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    h.update(extra.encode())
    return h.hexdigest()[:16]


def content_hash() -> str:
    """Hash of the sandbox build context (the Dockerfile and the guest programs): the image tag."""
    return _hash_files(_context_files())


def _tar_context(files: dict[str, tuple[bytes, int]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(files):
            data, mode = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


# status ----------------------------------------------------------------------


def _image_or_none(client: Any, ref: str) -> Any:
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def image_status(client: Any | None = None) -> ImageStatus:
    """Is the sandbox image present, and built from this tree? (for ``hazmat doctor``).

    Raises:
        BackendUnavailableError: the daemon cannot be reached.
        ImageError: the Dockerfile cannot be found.
    """
    client = client or docker_client()
    tag = f"{SANDBOX_REPO}:{content_hash()}"
    latest = _image_or_none(client, f"{SANDBOX_REPO}:latest")
    wanted = _image_or_none(client, tag)
    current = wanted is not None and latest is not None and wanted.id == latest.id
    hint = None
    if latest is None:
        hint = f"the sandbox image is missing; {BUILD_FIX}"
    elif not current:
        hint = f"the sandbox image is stale; {BUILD_FIX}"
    return ImageStatus(
        present=latest is not None,
        current=current,
        id=latest.id if latest is not None else None,
        tag=tag,
        base_present=_image_or_none(client, BASE_IMAGE) is not None,
        hint=hint,
    )


def resolve_image(client: Any, name: str) -> Any:
    """The image object for ``name``.

    ``hazmat-sandbox`` (no tag) means the image built from this hazmat's own build context
    (``hazmat-sandbox:<content-hash>``) when it exists, so two hazmat trees on one daemon
    (two versions, two checkouts) never run each other's guest programs; without it,
    ``hazmat-sandbox:latest`` (``hazmat doctor`` and the run's preflight say it is stale).
    Any other name without a tag means ``:latest``.

    Raises:
        ImageError: the image is not there (with the fix: ``run: hazmat image build``).
    """
    if name == SANDBOX_REPO:
        own = _image_or_none(client, f"{SANDBOX_REPO}:{content_hash()}")
        if own is not None:
            return own
    ref = name if ":" in name.rsplit("/", 1)[-1] or "@" in name else f"{name}:latest"
    image = _image_or_none(client, ref)
    if image is None:
        if ref.startswith(SANDBOX_REPO + ":"):
            raise ImageError(f"the sandbox image {ref} is missing", hint=BUILD_FIX)
        raise ImageError(
            f"the image {ref} is missing",
            hint=f"build or load it first (for the sandbox image: {BUILD_FIX})",
        )
    return image


# base bootstrap --------------------------------------------------------------


def apt_mirror() -> str:
    """The Debian mirror apt uses on this machine (``HAZMAT_DEBIAN_MIRROR`` overrides)."""
    if os.environ.get("HAZMAT_DEBIAN_MIRROR"):
        return os.environ["HAZMAT_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list")]
    folder = Path("/etc/apt/sources.list.d")
    if folder.is_dir():
        sources += sorted(folder.iterdir())
    for path in sources:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            urls: list[str] = []
            if line.startswith(("deb ", "deb-src ")):
                urls = [w for w in line.split()[1:] if "://" in w][:1]
            elif line.lower().startswith("uris:"):
                urls = line.split(":", 1)[1].split()
            for url in urls:
                url = url.rstrip("/")
                if "security" in url or "ubuntu" in url:
                    continue
                if url.endswith("/debian"):
                    return url
    return DEFAULT_MIRROR


def _try_pull(client: Any, progress: Progress) -> bool:
    progress(f"pulling {PULL_FALLBACK} ...")
    try:
        image = client.images.pull(PULL_FALLBACK)
    except Exception as exc:
        progress(f"cannot pull {PULL_FALLBACK} ({_short(exc)}); bootstrapping the base locally")
        return False
    repo, _, tag = BASE_IMAGE.partition(":")
    image.tag(repo, tag)
    return True


def bootstrap_base(
    client: Any | None = None, *, progress: Progress = _noop, suite: str = "bookworm"
) -> str:
    """Build ``hazmat-base:bookworm`` with ``mmdebstrap`` piped into ``docker import``.

    Returns the image id.

    Raises:
        ImageError: mmdebstrap is missing or failed, or the import failed.
    """
    client = client or docker_client()
    exe = shutil.which("mmdebstrap")
    if exe is None:
        raise ImageError(
            f"cannot pull {PULL_FALLBACK} and mmdebstrap is not installed to build the base",
            hint="run: sudo apt-get install -y mmdebstrap (then hazmat image build)",
        )
    mirror = apt_mirror()
    cmd = [exe, "--variant=minbase", "--include=ca-certificates", suite, "-", mirror]
    if os.geteuid() != 0:
        cmd.insert(1, "--mode=unshare")
    progress(f"bootstrapping {BASE_IMAGE}: {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    tail: list[str] = []

    def pump_stderr(stream: Any) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail.append(line)
                del tail[:-20]
                progress(line)

    pump = threading.Thread(target=pump_stderr, args=(proc.stderr,), daemon=True)
    pump.start()
    repo, _, tag = BASE_IMAGE.partition(":")
    error: str | None = None
    try:
        client.api.import_image_from_stream(
            proc.stdout,
            repository=repo,
            tag=tag,
            changes=[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                'CMD ["/bin/bash"]',
            ],
        )
    except Exception as exc:
        error = _short(exc)
    finally:
        proc.stdout.close()
        code = proc.wait()
        pump.join(timeout=5)
    if code != 0:
        raise ImageError(
            f"mmdebstrap failed (exit {code}): {' | '.join(tail[-3:])}",
            hint=f"check that {mirror} is reachable (apt-get update)",
        )
    if error is not None:
        raise ImageError(f"docker import of the base failed: {error}")
    image = _image_or_none(client, BASE_IMAGE)
    if image is None:
        raise ImageError(f"docker import did not produce {BASE_IMAGE}")
    progress(f"{BASE_IMAGE} ready ({image.short_id})")
    return str(image.id)


def ensure_base(client: Any, progress: Progress = _noop) -> bool:
    """Make sure ``hazmat-base:bookworm`` exists. Returns True when it had to be made."""
    if _image_or_none(client, BASE_IMAGE) is not None:
        return False
    if not _try_pull(client, progress):
        bootstrap_base(client, progress=progress)
    return True


# builds ----------------------------------------------------------------------


def _stream_build(
    client: Any,
    context: io.BytesIO,
    tag: str,
    progress: Progress,
    buildargs: dict[str, str],
    labels: dict[str, str],
) -> str:
    tail: list[str] = []
    image_id: str | None = None
    stream: Iterator[dict[str, Any]] = client.api.build(
        fileobj=context,
        custom_context=True,
        tag=tag,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
        buildargs=buildargs,
        labels=labels,
    )
    for chunk in stream:
        if "error" in chunk:
            detail = str(chunk.get("error", "")).strip()
            raise ImageError(f"building {tag} failed: {detail} | {' | '.join(tail[-3:])}")
        if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
            image_id = str(chunk["aux"]["ID"])
        text = str(chunk.get("stream") or chunk.get("status") or "").rstrip()
        for line in text.splitlines():
            if line.strip():
                tail.append(line)
                del tail[:-20]
                progress(line)
    if image_id is None:
        image = _image_or_none(client, tag)
        if image is None:
            raise ImageError(f"building {tag} produced no image: {' | '.join(tail[-3:])}")
        image_id = str(image.id)
    return image_id


def build_image(
    force: bool = False, progress: Progress | None = None, client: Any | None = None
) -> ImageInfo:
    """Build ``hazmat-sandbox:<content-hash>`` and tag it ``:latest``, unless current.

    Bootstraps the base first when it is missing (see the module docstring).

    Raises:
        BackendUnavailableError: the daemon cannot be reached.
        ImageError: the Dockerfile is missing, the base cannot be made, or the build failed.
    """
    progress = progress or _noop
    client = client or docker_client(timeout=1800)
    files = _context_files()
    digest = _hash_files(files)
    tag = f"{SANDBOX_REPO}:{digest}"
    existing = _image_or_none(client, tag)
    if existing is not None and not force:
        latest = _image_or_none(client, f"{SANDBOX_REPO}:latest")
        if latest is None or latest.id != existing.id:
            existing.tag(SANDBOX_REPO, "latest")
        progress(f"{tag} is current ({existing.short_id}); nothing to build")
        return ImageInfo(tag=tag, id=existing.id, content_hash=digest, built=False, base=BASE_IMAGE)
    bootstrapped = ensure_base(client, progress)
    progress(f"building {tag} on {BASE_IMAGE}")
    context = _tar_context({name: (data, 0o644) for name, data in files.items()})
    image_id = _stream_build(
        client,
        context,
        tag,
        progress,
        buildargs={"BASE": BASE_IMAGE},
        labels={"hazmat.image": "sandbox", "hazmat.content_hash": digest},
    )
    client.images.get(image_id).tag(SANDBOX_REPO, "latest")
    progress(f"built {tag} ({image_id[:19]}) and tagged {SANDBOX_REPO}:latest")
    log.info("image_built", tag=tag, id=image_id, base_bootstrapped=bootstrapped)
    return ImageInfo(
        tag=tag,
        id=image_id,
        content_hash=digest,
        built=True,
        base=BASE_IMAGE,
        base_bootstrapped=bootstrapped,
    )


def build_service_image(
    folder: str | Path, *, progress: Progress | None = None, client: Any | None = None
) -> str:
    """Build a task service from ``folder``/Dockerfile, offline, cached by content hash.

    The tag is ``hazmat-service:<name>-<hash>`` where the hash covers every file of the
    folder and the ids of the hazmat images it may build on (build args ``BASE`` =
    ``hazmat-base:bookworm`` and ``SANDBOX`` = ``hazmat-sandbox:latest`` are passed, so a
    Dockerfile can start with ``ARG SANDBOX`` / ``FROM ${SANDBOX}``). Returns the tag.

    Raises:
        ImageError: no Dockerfile in ``folder``, or the build failed.
    """
    progress = progress or _noop
    root = Path(folder).resolve()
    if not (root / "Dockerfile").is_file():
        raise ImageError(f"service build folder {root} has no Dockerfile")
    client = client or docker_client(timeout=1800)
    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(root).as_posix()] = (
                path.read_bytes(),
                path.stat().st_mode & 0o777,
            )
    bases = []
    for ref in (BASE_IMAGE, f"{SANDBOX_REPO}:latest"):
        image = _image_or_none(client, ref)
        bases.append(f"{ref}={image.id if image is not None else '-'}")
    digest = _hash_files(
        {k: v[0] + oct(v[1]).encode() for k, v in files.items()}, extra="\n".join(bases)
    )
    name = re.sub(r"[^a-z0-9_.-]+", "-", root.name.lower()).strip("-.") or "service"
    tag = f"{SERVICE_REPO}:{name}-{digest}"
    if _image_or_none(client, tag) is not None:
        return tag
    progress(f"building service image {tag} from {root}")
    _stream_build(
        client,
        _tar_context(files),
        tag,
        progress,
        buildargs={"BASE": BASE_IMAGE, "SANDBOX": f"{SANDBOX_REPO}:latest"},
        labels={"hazmat.image": "service", "hazmat.content_hash": digest},
    )
    return tag
