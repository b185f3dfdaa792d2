"""The local backend's launcher: run by the host's python as root, never imported.

    python3 -I -S launcher.py BASE RANGE CGROUP_PROCS BWRAP [BWRAP ARGS...]

1. join the sandbox's cgroups (``CGROUP_PROCS``: ``:``-joined ``cgroup.procs`` paths)
   and set ``oom_score_adj`` 500, so host memory pressure kills the sandbox first;
2. make a user namespace whose ids 0..RANGE-1 map to host ids BASE.. (a forked
   helper, still in the host's namespace, writes the maps) and become its root;
3. forbid nested user namespaces (``max_user_namespaces`` 0 inside it);
4. exec bwrap (opened before the ``unshare``, so the namespace's root need not reach
   its file) with a clean environment.

Every step that fails exits with a ``hazmat: ...`` line on stderr (71: a cgroup cannot
be joined; 70: no user namespace), which the backend turns into a clear error.
Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000


def _say(text: str) -> None:
    os.write(2, f"hazmat: {text}\n".encode())


def join_cgroups(paths: str) -> None:
    """Move this process into every ``cgroup.procs`` of ``paths`` (``:``-joined)."""
    for procs in filter(None, paths.split(":")):
        try:
            with open(procs, "w") as f:
                f.write(f"{os.getpid()}\n")
        except OSError as exc:
            _say(f"cannot join {procs}: {exc}")
            os._exit(71)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("500\n")  # under memory pressure on the host, the sandbox dies first
    except OSError:
        pass


def become_root_of_new_userns(base: int, size: int) -> None:
    """``unshare(CLONE_NEWUSER)`` with ids 0..size-1 mapped to host ``base``.., then
    setgroups/setgid/setuid 0 inside it."""
    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper: waits until the parent unshared, then writes its maps
        os.close(w)
        if os.read(r, 1) != b"x":
            os._exit(1)
        try:
            ppid = os.getppid()
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{ppid}/{name}", "w") as f:
                    f.write(f"0 {base} {size}\n")
        except OSError as exc:
            _say(f"cannot map ids: {exc}")
            os._exit(1)
        os._exit(0)
    os.close(r)
    if libc.unshare(CLONE_NEWUSER) != 0:
        _say(f"cannot create a user namespace: {os.strerror(ctypes.get_errno())}")
        os._exit(70)
    os.write(w, b"x")
    os.close(w)
    if os.waitpid(pid, 0)[1] != 0:
        os._exit(70)
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    try:
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0\n")
    except OSError:
        pass


def main(argv: list[str]) -> None:
    base, size, cgroups, bwrap, args = int(argv[0]), int(argv[1]), argv[2], argv[3], argv[4:]
    join_cgroups(cgroups)
    exe = os.open(bwrap, os.O_RDONLY | os.O_CLOEXEC)
    become_root_of_new_userns(base, size)
    os.execve(exe, ["bwrap", *args], {"PATH": "/usr/bin:/bin"})


if __name__ == "__main__":
    main(sys.argv[1:])
