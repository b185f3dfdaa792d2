"""How the supervisor runs one command: a runner process per command that owns the
command's whole process tree (guest program, standard library only, python 3.8+).

The runner starts a new session, makes itself a child subreaper (so descendants that
detach with ``setsid`` or double forks stay in its subtree), execs the command and
waits. On timeout it SIGKILLs its whole subtree, repeatedly until it is empty, and
reports exit code 124 with ``timed_out``. A command that is not found exits 127.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from types import FrameType
    from typing import Any, NoReturn
else:
    import _signal as signal  # the signal module's enums import enum (see wire.py)

if __package__:  # imported from the hazmat package (tests, the host's tools)
    from . import wire
else:  # a program: its sibling modules sit beside it, or the host preloaded them
    if "__file__" in globals():
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import wire  # type: ignore[import-not-found, no-redef]

PR_SET_CHILD_SUBREAPER = 36


_LIBC: ctypes.CDLL | None
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - no libc to talk to
    _LIBC = None


def set_subreaper() -> None:
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        try:
            ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        except (IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(root: int) -> list[int]:
    """Every live pid below ``root`` in the process tree."""
    children = _ppid_map()
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def reap_nohang() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(root: int) -> None:
    """SIGKILL every descendant of ``root`` until none is left."""
    for _ in range(200):
        pids = descendants(root)
        if not pids:
            return
        for pid in pids:
            with wire.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        for pid in pids:
            with wire.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        reap_nohang()
        time.sleep(0.002)


def uid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def kill_other_uids() -> int:
    """As root: SIGKILL every process of another uid (the agent's), until none is left.

    Used only when the sandbox is out of processes (e.g. a fork bomb left running in
    the background), so the harness can go on. Returns how many were signalled.
    """
    if os.getuid() != 0:
        return 0
    count = 0
    for _ in range(100):
        pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        victims = [p for p in pids if uid_of(p) not in (None, 0)]
        if not victims:
            break
        for pid in victims:
            with wire.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        for pid in victims:
            with wire.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                count += 1
        reap_nohang()
        time.sleep(0.01)
    return count


def fork_or_recover(note_fd: int = 2) -> int:
    """``os.fork()``, retried while the sandbox is out of processes (EAGAIN).

    After a few failed tries, the supervisor (as root) kills the agent's processes to
    make room: a fork bomb the agent left running must not take the harness down. It
    says so on ``note_fd`` (the command's stderr, when a command was being started).
    """
    for attempt in range(40):
        try:
            return os.fork()
        except BlockingIOError:
            if attempt == 4:
                n = kill_other_uids()
                with wire.suppress(OSError):
                    os.write(
                        note_fd,
                        f"hazmat: the sandbox was out of processes; {n} of the "
                        f"agent's processes were killed to recover\n".encode(),
                    )
            time.sleep(0.05)
    return os.fork()


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Timeout()


def runner(
    req: dict[str, Any], out_w: int, err_w: int, status_w: int, stdin_data: bytes
) -> NoReturn:
    """Body of the forked runner process. Never returns."""
    code, timed_out = 1, False
    try:
        os.setsid()
        set_subreaper()
        stdin_r: int | None = None
        stdin_w: int | None = None
        if stdin_data:
            stdin_r, stdin_w = os.pipe()
        pid = fork_or_recover(err_w)
        if pid == 0:
            _exec_command(req, stdin_r, out_w, err_w)
        os.close(out_w)
        os.close(err_w)
        if stdin_r is not None:
            os.close(stdin_r)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, float(req.get("timeout") or 3600))
        try:
            if stdin_w is not None:
                try:
                    view = memoryview(stdin_data)
                    while view:
                        view = view[os.write(stdin_w, view) :]
                except OSError:
                    pass
                os.close(stdin_w)
            while True:
                got, status = os.waitpid(-1, 0)
                if got == pid:
                    break
            signal.setitimer(signal.ITIMER_REAL, 0)
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        except _Timeout:
            timed_out, code = True, 124
            kill_tree(os.getpid())
        reap_nohang()
    except BaseException as exc:  # report, never raise out of a forked child
        with wire.suppress(OSError):
            os.write(2, f"hazmat runner: {exc!r}\n".encode())
    try:
        os.write(status_w, wire.dumps({"exit_code": code, "timed_out": timed_out}))
    finally:
        os._exit(0)


def _exec_command(req: dict[str, Any], stdin_r: int | None, out_w: int, err_w: int) -> NoReturn:
    try:
        if stdin_r is not None:
            os.dup2(stdin_r, 0)
        else:
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 65536)
        for sig in (
            signal.SIGPIPE,
            signal.SIGINT,
            signal.SIGTERM,
            signal.SIGALRM,
            signal.SIGCHLD,
            signal.SIGQUIT,
        ):
            signal.signal(sig, signal.SIG_DFL)
        if req.get("uid"):  # another user's command: the OOM killer's first pick
            with wire.suppress(OSError):
                fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
                os.write(fd, b"1000")  # (the fd goes with the exec: close-on-exec)
        if req.get("gid") is not None:
            os.setgroups([])
            os.setgid(int(req["gid"]))
        if req.get("uid") is not None:
            os.setuid(int(req["uid"]))
        if req.get("agent"):
            env = dict(os.environ)
            env.update(req.get("env") or {})
            argv = req["argv"]
            if req.get("cwd"):
                os.chdir(req["cwd"])
        else:
            os.chdir(req.get("cwd") or "/")
            try:
                argv, env = harness_command(req)
            except (FileNotFoundError, PermissionError) as exc:
                os.write(2, f"hazmat: {exc}\n".encode())
                os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
        try:
            os.execvpe(argv[0], argv, env)
        except FileNotFoundError:
            os.write(2, f"{argv[0]}: command not found\n".encode())
            os._exit(127)
        except PermissionError:
            os.write(2, f"{argv[0]}: permission denied\n".encode())
            os._exit(126)
    except BaseException as exc:
        with wire.suppress(OSError):
            os.write(2, f"hazmat: {exc}\n".encode())
        os._exit(126 if isinstance(exc, (PermissionError, OSError)) else 1)
    os._exit(1)


# commands of the harness ---------------------------------------------------------

SAFE_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
"""The only directories a harness command's programs are looked up in (those of them
that no other user than root can write)."""
_UNSAFE_VARS = frozenset(
    [
        "BASH_ENV",
        "ENV",
        "CDPATH",
        "GLOBIGNORE",
        "IFS",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "PATH",
        "PERLLIB",
        "PERL5LIB",
        "PERL5OPT",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "GCONV_PATH",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "RES_OPTIONS",
        "TMPDIR",
    ]
)
_UNSAFE_PREFIXES = ("LD_", "PYTHON", "BASH_FUNC_", "MALLOC_", "GLIBC_")
_PYTHON = ("python", "python3")


def _overflow_id(kind: str) -> int:
    try:
        with open(f"/proc/sys/kernel/overflow{kind}", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65534


_OWNERS = (0, _overflow_id("uid"))
"""Owners only root can act for: root, and the id a user namespace shows for ids it does
not map (the host's root files seen from the local backend's sandbox)."""
_GROUPS = (0, _overflow_id("gid"))


def _root_only(path: str, *, sticky_ok: bool = False) -> bool:
    """True when only root can change ``path`` (owned by root, not writable by another
    group or by others). ``sticky_ok``: a sticky folder anyone can write (``/tmp``) is
    fine as the *parent* of a root-owned entry (nobody else can rename or remove that
    entry), never as a folder looked up for programs (anyone can add a name there)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_uid not in _OWNERS:
        return False
    if st.st_mode & 0o002 and not (sticky_ok and st.st_mode & 0o1000):
        return False
    return not (st.st_mode & 0o020 and st.st_gid not in _GROUPS)


def _is_python(name: str) -> bool:
    base = os.path.basename(name)
    if base in _PYTHON:
        return True
    return base.startswith("python3.") and base[8:].isdigit()


def harness_command(req: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of a command the harness runs (setup, checks, scorers: every
    ``exec`` not marked ``agent``), so that nothing the agent wrote runs or is imported
    by it: a clean environment (a fixed PATH of system folders that only root can
    write, ``HOME=/root`` for root, no loader, interpreter or shell start-up variables),
    a python started isolated (``-I``: no current folder, script folder, user site or
    ``PYTHON*`` variables on its path), and a program that only root can change.
    The caller runs it in ``req["cwd"]`` or ``/``.

    Raises:
        PermissionError: the program (or its folder) can be changed by another user.
        FileNotFoundError: no such program in the safe PATH.
    """
    uid = req.get("uid")
    root = (os.getuid() if uid is None else int(uid)) == 0
    path = ":".join(d for d in SAFE_PATH if _root_only(d))
    env = {"PATH": path, "LANG": "C.UTF-8", "HOME": "/root" if root else "/"}
    if root:
        env.update(USER="root", LOGNAME="root")
    for key, value in (req.get("env") or {}).items():
        if key in _UNSAFE_VARS or key.startswith(_UNSAFE_PREFIXES) or (root and key == "HOME"):
            continue
        env[str(key)] = str(value)
    argv = [str(a) for a in req["argv"]]
    program = argv[0]
    if "/" not in program:
        for folder in filter(None, path.split(":")):  # never "" (the current folder)
            candidate = os.path.join(folder, program)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                program = candidate
                break
        else:
            raise FileNotFoundError(f"{argv[0]}: command not found")
    real = os.path.realpath(program)
    chain = [real]
    while chain[-1] != "/":
        chain.append(os.path.dirname(chain[-1]))
    if not (_root_only(real) and all(_root_only(p, sticky_ok=True) for p in chain[1:])):
        raise PermissionError(f"{argv[0]}: refused: another user than root can change it")
    argv[0] = program
    if _is_python(program) and "-I" not in argv[1:2]:
        argv.insert(1, "-I")
    return argv, env


def apply_rlimits(argv: list[str]) -> None:
    names = {
        "nproc": resource.RLIMIT_NPROC,
        "as": resource.RLIMIT_AS,
        "cpu": resource.RLIMIT_CPU,
        "fsize": resource.RLIMIT_FSIZE,
        "nofile": resource.RLIMIT_NOFILE,
        "core": resource.RLIMIT_CORE,
    }
    for arg in argv:
        if arg.startswith("--rlimit="):
            name, _, value = arg[len("--rlimit=") :].partition("=")
            resource.setrlimit(names[name], (int(value), int(value)))
