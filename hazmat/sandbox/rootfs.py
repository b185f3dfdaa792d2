"""Root file systems of environments: one environment on both backends.

An environment (hazmat's sandbox image, or a task's ``sandbox.build`` on top of it) is
named by one content hash. Docker runs it as an image (``hazmat-sandbox:<hash>``,
``hazmat-env:<hash>``); the local backend runs the same environment's root file system,
extracted once per hash into the cache::

    <cache>/<hash>/tree/        the file system (sandboxes bind parts of it read-only)
    <cache>/<hash>/meta.json    where it came from: docker export of an image id, or mmdebstrap
    <cache>/<hash>.lock         held while one process makes it (others wait, then reuse it)
    <cache>/<hash>.use          flock shared by each local sandbox running on it
                                (:mod:`hazmat.sandbox.rootfs_prune`: what ``hazmat
                                cleanup --rootfs`` never removes)

``<cache>`` is ``$HAZMAT_ROOTFS_CACHE``, else ``$XDG_CACHE_HOME/hazmat/rootfs`` (default
``~/.cache``); as root, when that folder is another user's or cannot be entered by other
users (the local sandbox's own ids must reach the tree), ``/var/cache/hazmat/rootfs``.
A cache another user could change, or (as root) one the sandbox's ids cannot reach, is
refused (:mod:`hazmat.sandbox.rootfs_trust`); so is a cached tree that is not root's or
the caller's at use.

:func:`rootfs_for` takes a :class:`RootfsSource` and returns the tree, trying in order:

1. the cached tree;
2. ``docker export`` of a container created (never started) from the image, when the
   daemon answers; the image is built first when it is missing (``source.build``);
3. ``mmdebstrap`` of Debian bookworm with the same packages (the sandbox Dockerfile's list
   plus the task's Debian packages; its pip packages installed in the tree), when there is
   no Docker. A task Dockerfile cannot be built this way.

The tree is made in ``<cache>/.tmp-<hash>-*`` (``0700``), checked unchanged (same folder,
not a symlink), renamed into place (atomic), then opened to others (``0755``). Archives
are extracted member by member through :func:`safe_member`: no absolute or escaping
paths, links only inside the tree, no device nodes or FIFOs, no setuid/setgid/sticky or
group/other write bits; symlinks stay symlinks (absolute targets included: they resolve
inside the sandbox).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

from hazmat.errors import BackendUnavailableError, ImageError
from hazmat.sandbox.rootfs_trust import (
    MOUNT_POINTS,
    NEVER_SHOWN,
    check_reachable,
    check_trusted,
    finish_tree,
    locked,
    open_dir,
    problem,
    trusted_entry,
    unchanged,
    unreachable,
)

__all__ = [
    "HOST",
    "MOUNT_POINTS",
    "NEVER_SHOWN",
    "RootfsSource",
    "base_packages",
    "base_source",
    "cache_root",
    "cached_rootfs",
    "environment_of_image",
    "extract_tar",
    "host_ca_bundle",
    "mmdebstrap_command",
    "rootfs_for",
    "rootfs_meta",
    "safe_member",
]

log = structlog.get_logger("hazmat.sandbox.rootfs")

HOST = "host"
"""The environment name of a local sandbox that runs on the host's own ``/usr`` (no
root file system could be had: neither Docker nor mmdebstrap)."""
SUITE = "bookworm"
HOST_CA = "hazmat-host-ca.crt"

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


@dataclass(frozen=True)
class RootfsSource:
    """How to get one environment's root file system."""

    hash: str
    """The environment's content hash (the cache key)."""
    image: str
    """The Docker image of the same environment (``hazmat-sandbox:<hash>``)."""
    build: Callable[[Progress], object] | None = field(default=None, compare=False)
    """Builds ``image`` with Docker when it is missing (None: it cannot be built here)."""
    apt: tuple[str, ...] | None = None
    """Debian packages for mmdebstrap (None: this environment cannot be bootstrapped, e.g.
    a task Dockerfile)."""
    pip: tuple[str, ...] = ()
    """pip requirements installed into the tree after mmdebstrap."""


# where -------------------------------------------------------------------------


SYSTEM_CACHE = Path("/var/cache/hazmat/rootfs")
"""Root's cache when its ``XDG_CACHE_HOME``/``HOME`` one is another user's or private."""


def cache_root() -> Path:
    """The folder of cached root file systems (see the module docstring): checked, from
    ``/`` down, that no other user can change it and (as root) that the sandbox's ids can
    reach it.

    Raises:
        ConfigError: the folder is another user's, writable by others, or (as root) not
            reachable by the sandbox's ids; one line with the fix.
    """
    override = os.environ.get("HAZMAT_ROOTFS_CACHE")
    name: str | None = "HAZMAT_ROOTFS_CACHE"
    if override:
        base = Path(os.path.abspath(override))
    else:
        name = "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "HOME"
        home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        base = Path(os.path.abspath(home)) / "hazmat" / "rootfs"
        if os.geteuid() == 0 and (problem(base) or unreachable(base)):
            base, name = SYSTEM_CACHE, None  # a user's folder, or private to root
    check_trusted(base, name)
    check_reachable(base, name)
    return base


def cached_rootfs(digest: str) -> Path | None:
    """The cached tree of environment ``digest``, or None when it is not made yet (or
    what is there is not root's or the caller's, or others could change it: it is made
    again).

    Raises:
        ConfigError: the cache folder itself is refused (see :func:`cache_root`).
    """
    folder = cache_root() / digest
    if not ((folder / "meta.json").is_file() and (folder / "tree").is_dir()):
        return None
    if not (trusted_entry(folder) and trusted_entry(folder / "tree")):
        log.warning("rootfs_untrusted", folder=str(folder), action="made again")
        return None
    return folder / "tree"


def rootfs_meta(digest: str) -> dict[str, Any] | None:
    """What ``meta.json`` says of a cached tree (source, image id, seconds), or None."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((cache_root() / digest / "meta.json").read_text())
        return data if isinstance(data, dict) else None
    return None


# sources -----------------------------------------------------------------------


def base_packages(dockerfile: str) -> list[str]:
    """The Debian packages the sandbox Dockerfile installs (its ``apt-get install`` lines).

    Raises:
        ImageError: the Dockerfile installs nothing (it was changed beyond recognition).
    """
    text = dockerfile.replace("\\\n", " ")
    found: list[str] = []
    for match in re.finditer(r"apt-get install([^&\n]*)", text):
        found += [w for w in match.group(1).split() if not w.startswith("-")]
    if not found:
        raise ImageError("the sandbox Dockerfile has no apt-get install line to mirror")
    return found


def base_source() -> RootfsSource:
    """The hazmat sandbox image's environment (``hazmat-sandbox:<content-hash>``).

    Raises:
        ImageError: the sandbox Dockerfile cannot be found or read.
    """
    from hazmat.sandbox.docker.image import SANDBOX_REPO, content_hash, dockerfile_path

    digest = content_hash()

    def build(progress: Progress) -> object:
        from hazmat.sandbox.docker.image import build_image

        return build_image(progress=progress)

    return RootfsSource(
        hash=digest,
        image=f"{SANDBOX_REPO}:{digest}",
        build=build,
        apt=tuple(base_packages(dockerfile_path().read_text())),
    )


def environment_of_image(image: str, labels: dict[str, str] | None = None) -> str | None:
    """The environment hash a Docker image runs: the tag of ``hazmat-env:<hash>`` and
    ``hazmat-sandbox:<hash>``, else the ``hazmat.content_hash`` label of hazmat's sandbox
    image (``hazmat-sandbox:latest``); None for any other image."""
    repo, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
    if repo in ("hazmat-env", "hazmat-sandbox") and re.fullmatch(r"[0-9a-f]{16}", tag):
        return tag
    labels = labels or {}
    if labels.get("hazmat.image") == "sandbox" and labels.get("hazmat.content_hash"):
        return labels["hazmat.content_hash"]
    return None


# extraction ----------------------------------------------------------------------


def safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """The member as it may be extracted under ``dest``, or None to skip it (device
    nodes, FIFOs: ``/dev`` is the sandbox's own). Hard links must name a file inside the
    tree; tarfile's ``tar`` filter does the rest (paths, modes); owners become root.

    Raises:
        ImageError: an absolute or escaping path, or a link leaving the tree.
    """
    if member.ischr() or member.isblk() or member.isfifo():
        return None
    if member.islnk():  # the tar filter lets a hard link name any file of the host
        root = os.path.realpath(dest)
        target = os.path.realpath(os.path.join(root, member.linkname))
        if os.path.isabs(member.linkname) or os.path.commonpath([root, target]) != root:
            raise ImageError(
                f"refused a hostile archive member {member.name!r}: a hard link to "
                f"{member.linkname!r}, outside the tree"
            )
    try:
        clean = tarfile.tar_filter(member, dest)
    except tarfile.FilterError as exc:
        raise ImageError(f"refused a hostile archive member {member.name!r}: {exc}") from None
    # Owned by the host's root (when extracting as root): no host user may change a tree
    # that later sandboxes run on. Inside, every owner shows as nobody anyway (the
    # sandbox's ids are a range of their own).
    return clean.replace(uid=0, gid=0, uname="root", gname="root", deep=False)


def extract_tar(fileobj: IO[bytes], dest: Path) -> int:
    """Extract an uncompressed tar stream into ``dest`` (which must exist) through
    :func:`safe_member`; returns the number of members extracted. Run as root, every
    file is root's.

    Raises:
        ImageError: a hostile member (see :func:`safe_member`) or a broken archive.
    """
    count = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for member in tar:
                clean = safe_member(member, str(dest))
                if clean is None:
                    continue
                tar.extract(clean, dest, numeric_owner=True, filter="fully_trusted")
                count += 1
    except tarfile.TarError as exc:
        raise ImageError(f"cannot extract the root file system: {exc}") from None
    return count


class _Chunks(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (the Docker export)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _docker_export(source: RootfsSource, tree: Path, progress: Progress) -> dict[str, Any]:
    import docker.errors

    from hazmat.sandbox.docker.image import docker_client

    client = docker_client(timeout=1800)
    try:
        try:
            image = client.images.get(source.image)
        except docker.errors.ImageNotFound:
            if source.build is None:
                raise ImageError(f"the image {source.image} is missing") from None
            progress(f"building {source.image} first")
            source.build(progress)
            image = client.images.get(source.image)
        progress(f"exporting the root file system of {source.image} ({image.short_id})")
        box = client.containers.create(
            image.id,
            command=["true"],
            labels={"hazmat": "1", "hazmat.rootfs": source.hash},
            network_disabled=True,
        )
        try:
            stream = io.BufferedReader(_Chunks(iter(box.export(chunk_size=1 << 20))), 1 << 20)
            count = extract_tar(stream, tree)
        finally:
            with contextlib.suppress(Exception):
                box.remove(force=True)
        return {
            "source": "docker-export",
            "image": source.image,
            "image_id": image.id,
            "members": count,
        }
    finally:
        client.close()


def mmdebstrap_command(
    out: Path,
    *,
    apt: list[str] | tuple[str, ...],
    pip: list[str] | tuple[str, ...] = (),
    mirror: str,
    ca: Path | None = None,
    root: bool = True,
    exe: str = "mmdebstrap",
) -> list[str]:
    """The mmdebstrap command line that bootstraps an environment's tree into the tar ``out``:
    minbase bookworm with ``apt`` (plus ``python3-pip`` when there are ``pip`` requirements,
    installed by a customize hook; ``ca``, when given, is the CA bundle pip trusts).
    Unprivileged (``root`` False) it runs in ``--mode=unshare``. Pure."""
    packages = sorted(set(apt) | {"ca-certificates"} | ({"python3-pip"} if pip else set()))
    cmd = [exe, "--variant=minbase", "--include=" + ",".join(packages)]
    if not root:
        cmd.append("--mode=unshare")
    if pip:
        env = ""
        if ca is not None:
            cmd.append(f'--customize-hook=cp {shlex.quote(str(ca))} "$1/tmp/{HOST_CA}"')
            env = f"PIP_CERT=/tmp/{HOST_CA} "
        install = " ".join(shlex.quote(p) for p in sorted(set(pip)))
        cmd.append(
            f'--customize-hook=chroot "$1" env {env}python3 -m pip install --no-cache-dir '
            f"--break-system-packages {install}"
        )
        cmd.append(f'--customize-hook=rm -f "$1/tmp/{HOST_CA}"')
    cmd += [
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
        SUITE,
        str(out),
        mirror,
    ]
    return cmd


def _mmdebstrap(source: RootfsSource, tree: Path, progress: Progress) -> dict[str, Any]:
    from hazmat.sandbox.docker.image import apt_mirror

    if source.apt is None:
        raise ImageError(
            f"the environment {source.hash} is a Dockerfile: its root file system needs Docker",
            hint="start Docker (the local backend then uses the image's root file system)",
        )
    exe = shutil.which("mmdebstrap")
    if exe is None:
        raise ImageError(
            f"no Docker and no mmdebstrap to make the root file system of {source.hash}",
            hint="start Docker, or: apt-get install -y mmdebstrap",
        )
    archive = tree.parent / "rootfs.tar"
    ca = None
    if source.pip:
        bundle = host_ca_bundle()
        if bundle:
            ca = tree.parent / HOST_CA
            ca.write_bytes(bundle)
    cmd = mmdebstrap_command(
        archive,
        apt=source.apt,
        pip=source.pip,
        mirror=apt_mirror(),
        ca=ca,
        root=os.geteuid() == 0,
        exe=exe,
    )
    progress("bootstrapping: " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise ImageError(f"mmdebstrap failed (exit {proc.returncode}): {tail}")
    with archive.open("rb") as f:
        count = extract_tar(f, tree)
    archive.unlink()
    if ca is not None:
        ca.unlink()
    return {
        "source": "mmdebstrap",
        "packages": sorted(source.apt),
        "pip": list(source.pip),
        "members": count,
    }


def host_ca_bundle() -> bytes:
    """The CA certificates this machine trusts (``PIP_CERT``, ``REQUESTS_CA_BUNDLE``,
    ``SSL_CERT_FILE`` or OpenSSL's default file); empty when there is none. Builds (Docker
    or mmdebstrap) give it to pip, so they trust what the host trusts."""
    import ssl

    candidates = [os.environ.get(k) for k in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")]
    paths = ssl.get_default_verify_paths()
    candidates += [paths.cafile, paths.openssl_cafile]
    for c in candidates:
        if c and Path(c).is_file():
            try:
                return Path(c).read_bytes()
            except OSError:
                continue
    return b""


# the cache -------------------------------------------------------------------------


def _make_cache(root: Path) -> None:
    """Create the cache folder (``0755``) and check it again now that it exists (a
    sticky parent lets another user create it first).

    Raises:
        ConfigError: see :func:`cache_root`.
    """
    if not root.is_dir():
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            fd = open_dir(root)
            try:
                if os.fstat(fd).st_uid == os.geteuid():
                    os.fchmod(fd, 0o755)
            finally:
                os.close(fd)
    cache_root()  # every component exists now


def _make(source: RootfsSource, tree: Path, progress: Progress) -> dict[str, Any]:
    """Fill ``tree`` from Docker when it answers, else from mmdebstrap."""
    how = os.environ.get("HAZMAT_ROOTFS_SOURCE", "")
    if how != "mmdebstrap":
        try:
            return _docker_export(source, tree, progress)
        except BackendUnavailableError as exc:
            if how == "docker":
                raise
            progress(f"no Docker ({exc.one_line()}); trying mmdebstrap")
    return _mmdebstrap(source, tree, progress)


def rootfs_for(source: RootfsSource, progress: Progress | None = None) -> Path:
    """The root file system of ``source``'s environment: the cached tree, made first when
    it is not there (see the module docstring). Safe to call from several threads and
    processes at once: one makes it, the others wait and reuse it.

    Raises:
        ImageError: it cannot be made (no Docker and no mmdebstrap, a Dockerfile without
            Docker, a failed build or bootstrap, a hostile archive member, a folder of
            the tree being made swapped, the lock file a symlink).
        ConfigError: the cache folder is refused (see :func:`cache_root`).
    """
    from hazmat.sandbox.local.host import rmtree

    hit = cached_rootfs(source.hash)
    if hit is not None:
        return hit
    progress = progress or _noop
    root = cache_root()
    _make_cache(root)
    with locked(root / f"{source.hash}.lock"):
        hit = cached_rootfs(source.hash)
        if hit is not None:
            return hit
        for stale in root.glob(f".tmp-{source.hash}-*"):  # a maker that died
            rmtree(stale)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{source.hash}-", dir=root))  # 0700
        try:
            tree = tmp / "tree"
            tree.mkdir(mode=0o755)
            made = [os.lstat(tmp), os.lstat(tree)]
            t0 = time.monotonic()
            meta = _make(source, tree, progress)
            finish_tree(tree)
            unchanged([tmp, tree], made)
            meta.update(hash=source.hash, seconds=round(time.monotonic() - t0, 2), made=time.time())
            (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
            final = root / source.hash
            if os.path.lexists(final):  # a broken or refused leftover
                rmtree(final)
            unchanged([tmp, tree], made)
            os.rename(tmp, final)
        except BaseException:
            rmtree(tmp)
            raise
        fd = open_dir(final)
        try:
            os.fchmod(fd, 0o755)
        finally:
            os.close(fd)
    log.info("rootfs_made", hash=source.hash, **{k: meta[k] for k in ("source", "seconds")})
    progress(f"root file system {source.hash} ready ({meta['source']}, {meta['seconds']} s)")
    return final / "tree"
