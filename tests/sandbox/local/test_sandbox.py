"""The local (bubblewrap) backend against real bubblewrap and real namespaces.

Every sandbox is made through the ``sandbox`` factory fixture, which remembers
its pid namespace and backing folder and, after the test, checks that no
process of that namespace and no folder is left on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from hazmat.errors import (
    BackendUnavailableError,
    SandboxClosedError,
    SandboxStartError,
    UnknownBackendError,
)
from hazmat.sandbox import Limits, SandboxSpec, create_sandbox, get_backend
from hazmat.sandbox.local import LocalSandbox, cleanup_leftovers, probe
from hazmat.sandbox.local.disk import mounts_under

from .test_disk import _loops_of

pytestmark = [pytest.mark.anyio, pytest.mark.local, pytest.mark.timeout(60)]

Factory = Callable[..., Awaitable[LocalSandbox]]
ROOT = Path(__file__).resolve().parents[3]


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _pids_in_namespace(ns: str, started_before: float | None = None) -> list[int]:
    """Host pids in pid namespace ``ns`` (``pid:[inode]``).

    A dead namespace's inode number can be reused by a new one (e.g. a container
    started meanwhile), so ``started_before`` (seconds since boot) skips processes
    started after the namespace was gone.
    """
    out = []
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") != ns:
                    continue
                stat = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if started_before is None or int(stat[19]) / tick <= started_before:
                out.append(int(name))
    return out


def _host_cmdlines(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out


@pytest.fixture
async def sandbox() -> AsyncIterator[Factory]:
    """Start LocalSandboxes; after the test, stop them and prove nothing is left."""
    made: list[LocalSandbox] = []
    namespaces: list[str] = []
    folders: list[Path] = []

    async def make(spec: SandboxSpec | None = None, **fields: Any) -> LocalSandbox:
        sb = LocalSandbox(spec or SandboxSpec(**fields), run_id="test", episode_id="local")
        made.append(sb)
        await sb.start()
        namespaces.append(sb._pidns)
        assert sb._dir is not None
        folders.append(sb._dir)
        return sb

    yield make
    inside = {ns: set(_pids_in_namespace(ns)) for ns in namespaces}
    for sb in made:
        await sb.stop()
    stopped = _uptime() - 0.02  # a container started right now may reuse a dead inode
    for ns in namespaces:
        left = [
            pid
            for pid in _pids_in_namespace(ns)
            if pid in inside[ns] or pid in _pids_in_namespace(ns, started_before=stopped)
        ]
        assert not left, f"processes left behind: {_host_cmdlines(left)}"
    for folder in folders:
        assert not folder.exists(), f"backing folder left behind: {folder}"


# isolation -------------------------------------------------------------------


async def test_writes_outside_the_writable_dirs_fail(sandbox: Factory) -> None:
    sb = await sandbox()
    for path in ("/x", "/usr/x", "/etc/x", "/etc/passwd", "/home/x", "/var/x", "/.hazmat/x"):
        r = await sb.exec(["sh", "-c", f"echo hi >> {path}"])
        assert r.exit_code != 0, path
    for path in ("/home/agent/ok", "/tmp/ok", "/var/tmp/ok2"):
        r = await sb.exec(["sh", "-c", f"echo hi > {path} && cat {path}"])
        assert r.ok and r.stdout == b"hi\n", (path, r)
    with pytest.raises(PermissionError):
        await sb.write_file("/etc/evil", b"x")
    with pytest.raises(PermissionError):
        await sb.write_file("/root/evil", b"x")  # the agent may not write root's home
    r = await sb.exec("touch /usr/bin/evil", user="root")  # nor may root write the system
    assert r.exit_code != 0


async def test_no_network_only_loopback(sandbox: Factory) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        sb = await sandbox()
        r = await sb.exec(["cat", "/proc/net/dev"])
        ifaces = [ln.split(":")[0].strip() for ln in r.stdout_text.splitlines()[2:]]
        assert ifaces == ["lo"]
        r = await sb.exec(["cat", "/proc/net/route"])
        assert len(r.stdout_text.strip().splitlines()) <= 1  # header only: no route anywhere
        probe = (
            "import socket,sys\n"
            "s=socket.socket(); s.settimeout(3)\n"
            f"try:\n s.connect(('127.0.0.1',{port})); print('CONNECTED')\n"
            "except OSError as e: print('refused', e)\n"
        )
        r = await sb.exec(["python3", "-c", probe])
        assert "CONNECTED" not in r.stdout_text and "refused" in r.stdout_text, r
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


async def test_host_processes_are_invisible(sandbox: Factory) -> None:
    sb = await sandbox()
    r = await sb.exec(["ps", "-eo", "pid=,comm="])
    assert r.ok, r
    comms = {line.split(None, 1)[1] for line in r.stdout_text.strip().splitlines()}
    assert comms <= {"bwrap", "python3", "ps"}, comms
    assert len(r.stdout_text.strip().splitlines()) <= 6
    r = await sb.exec(["sh", "-c", "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '"])
    assert "pytest" not in r.stdout_text


async def test_host_files_are_invisible(sandbox: Factory, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    sb = await sandbox()
    for path in (
        str(secret),
        str(tmp_path),
        "/work",
        "/root/.pyenv",
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/ssh",
        "/etc/machine-id",
        "/mnt",
        "/old_root",
        "/sys",
        # on an environment's tree these are the image's (tests/sandbox/local/test_system.py)
        *(("/var/lib", "/opt", "/srv") if sb.info()["env"] == "host" else ()),
    ):
        r = await sb.exec(["test", "-e", path])
        assert r.exit_code == 1, f"{path} is visible in the sandbox"
    r = await sb.exec(["ls", "-A", "/home", "/root", "/tmp"], user="root")
    assert r.stdout_text.split() == ["/home:", "agent", "/root:", "/tmp:"], r.stdout_text
    passwd = (await sb.read_file("/etc/passwd")).decode()
    assert [ln.split(":")[0] for ln in passwd.splitlines()] == ["root", "agent", "nobody"]


async def test_agent_is_not_root_and_has_no_capabilities(sandbox: Factory) -> None:
    sb = await sandbox(files={"/root/flag.txt": {"content": "FLAG{x}", "mode": 0o600}})
    r = await sb.exec("id -u; grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status; cat /root/flag.txt")
    lines = r.stdout_text.splitlines()
    assert lines[0] == "1000"
    assert all(ln.split()[1] == "0000000000000000" for ln in lines[1:4]), lines
    assert "FLAG" not in r.stdout_text and "Permission denied" in r.stderr_text
    with pytest.raises(PermissionError):
        await sb.read_file("/root/flag.txt")
    assert await sb.read_file("/root/flag.txt", user="root") == b"FLAG{x}"
    r = await sb.exec(["cat", "/root/flag.txt"], user="root")
    assert r.ok and r.stdout == b"FLAG{x}"
    r = await sb.exec(["unshare", "-U", "true"])  # no nested user namespaces
    assert r.exit_code != 0


async def test_risky_syscalls_are_filtered(sandbox: Factory) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("syscall numbers below are x86_64 ones")
    probe = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for nr in (425, 250, 321, 298, 272, 165, 39):\n"
        "    r = libc.syscall(nr, 0, 0, 0, 0, 0)\n"
        "    print(nr, r if r >= 0 else -ctypes.get_errno())\n"
    )
    sb = await sandbox()
    for user in ("agent", "root"):
        r = await sb.exec(["python3", "-c", probe], user=user)
        got = dict(line.split() for line in r.stdout_text.splitlines())
        assert got.pop("425") == "-38"  # io_uring: ENOSYS, so programs fall back
        assert int(got.pop("39")) > 0  # getpid still works
        assert set(got.values()) == {"-1"}, got  # EPERM


@pytest.mark.timeout(60)
async def test_cpu_quota_caps_the_whole_sandbox(sandbox: Factory) -> None:
    sb = await sandbox(limits=Limits(cpus=0.25))
    if not any("cpu" in c for c in sb.info()["cgroups"]):
        pytest.skip("no writable cpu cgroup here")
    burn = (
        "import os, time\nt = time.time()\n"
        "while time.time() - t < 2: pass\nprint(sum(os.times()[:2]))"
    )
    r = await sb.exec(["python3", "-c", burn])
    assert float(r.stdout_text) < 1.0, r.stdout_text  # 0.25 cores for 2 s is about 0.5 s


async def test_host_environment_never_leaks(
    sandbox: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = "sk-hazmat-test-" + os.urandom(8).hex()
    monkeypatch.setenv("OPENAI_API_KEY", fake)
    sb = await sandbox(env={"TASK_VAR": "visible"})
    agent = await sb.exec(["env"])
    shell = await sb.shell("env")
    root = await sb.exec("cat /proc/[0-9]*/environ | tr '\\0' '\\n'", user="root")
    for r in (agent, shell, root):
        assert fake not in r.stdout_text
        assert "OPENAI_API_KEY" not in r.stdout_text
    assert "TASK_VAR=visible" in agent.stdout_text
    names = {ln.split("=", 1)[0] for ln in agent.stdout_text.splitlines()}
    assert names <= {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "PWD", "TASK_VAR"}, names


# limits ----------------------------------------------------------------------


@pytest.mark.timeout(90)
async def test_fork_bomb_is_stopped_and_the_host_keeps_working(sandbox: Factory) -> None:
    sb = await sandbox(limits=Limits(pids=64))
    r = await sb.exec(["bash", "-c", ":(){ :|:& };:; sleep 30"], timeout=5)
    assert r.timed_out or r.exit_code != 0
    # the host and the runner still fork fine
    assert subprocess.run(["true"], timeout=10).returncode == 0
    ok = await sb.exec(["echo", "alive"], timeout=20)
    assert ok.ok and ok.stdout == b"alive\n", ok
    r = await sb.exec(["sh", "-c", "ps -e --no-headers | wc -l"])
    assert int(r.stdout_text) < 10, "bomb processes survived the timeout"


async def test_memory_bomb_is_killed(sandbox: Factory) -> None:
    sb = await sandbox(limits=Limits(memory_mb=256))
    r = await sb.exec(["python3", "-c", "b = bytearray(1 << 30)"], timeout=20)
    assert r.exit_code != 0 and "MemoryError" in r.stderr_text
    r = await sb.exec(
        ["python3", "-c", "x = []\nwhile True: x.append(bytearray(1 << 20))"], timeout=30
    )
    assert r.exit_code != 0 and not r.timed_out
    assert (await sb.exec(["true"])).ok


@pytest.mark.timeout(90)
async def test_many_small_memory_bombs_stay_inside_the_sandbox_cgroup(sandbox: Factory) -> None:
    sb = await sandbox(limits=Limits(memory_mb=128, file_bytes=1 << 20))
    cgroups = [Path(p) for p in sb.info()["cgroups"]]
    memory = [p for p in cgroups if (p / "memory.limit_in_bytes").exists()]
    if not memory:
        pytest.skip("no writable memory cgroup here: only per-process rlimits apply")
    limit = int((memory[0] / "memory.limit_in_bytes").read_text())
    bomb = (
        "x = bytearray(100 << 20); x[::4096] = b'1' * len(x[::4096]); "
        "import time; time.sleep(3); print('survived')"
    )
    loop = f'for i in 1 2 3 4 5 6 7 8; do python3 -c "{bomb}" & done; wait'
    r = await sb.exec(["sh", "-c", loop], timeout=30)
    peak = int((memory[0] / "memory.max_usage_in_bytes").read_text())
    assert peak <= limit, (peak, limit)
    assert r.stdout_text.count("survived") < 8, "8 x 100 MiB fit in a 128 MiB sandbox?"
    assert (await sb.exec(["echo", "alive"])).ok
    assert subprocess.run(["true"], timeout=10).returncode == 0


async def test_flooding_stdout_is_capped_and_flagged(sandbox: Factory) -> None:
    cap = 1 << 20
    sb = await sandbox(limits=Limits(output_bytes=cap))
    r = await sb.exec(["yes"], timeout=3)
    assert r.truncated and r.timed_out
    assert len(r.stdout) == cap and r.stdout_total > cap
    assert r.stdout[:4] == b"y\ny\n"
    r = await sb.exec(["head", "-c", str(3 * cap), "/dev/zero"])
    assert r.ok and r.truncated and len(r.stdout) == cap and r.stdout_total == 3 * cap
    r = await sb.shell("yes | head -c 2000000")
    assert r.truncated and len(r.stdout) == cap


async def test_sleep_and_detached_children_die_at_the_timeout(sandbox: Factory) -> None:
    sb = await sandbox()
    t0 = time.monotonic()
    r = await sb.exec(
        "setsid sleep 1001 & (setsid sh -c 'sleep 1002' &) ; sleep infinity", timeout=2
    )
    assert r.timed_out and r.exit_code == 124
    assert time.monotonic() - t0 < 10
    left = [c for c in _host_cmdlines(_pids_in_namespace(sb._pidns)) if "sleep" in c]
    assert not left, left
    r = await sb.shell("sleep infinity", timeout=1)
    assert r.timed_out
    r = await sb.exec(["ps", "-eo", "args="])
    assert "sleep" not in r.stdout_text.replace("ps -eo args=", ""), r.stdout_text


# commands --------------------------------------------------------------------


async def test_shell_state_persists(sandbox: Factory) -> None:
    sb = await sandbox()
    r = await sb.shell(
        "mkdir -p /tmp/w && cd /tmp/w && export FOO=bar && LOCAL=1 && "
        "greet() { echo hello $1; } && alias ll='echo aliased'"
    )
    assert r.ok, r
    r = await sb.shell("pwd; echo $FOO $LOCAL; greet you; ll; sh -c 'echo $FOO'")
    assert r.stdout_text.splitlines() == ["/tmp/w", "bar 1", "hello you", "aliased", "bar"]
    r = await sb.shell("id -un")
    assert r.stdout == b"agent\n"
    r = await sb.shell("false")
    assert r.exit_code == 1


async def test_commands_not_found_give_127(sandbox: Factory) -> None:
    sb = await sandbox()
    assert (await sb.exec(["no-such-command-hz"])).exit_code == 127
    assert (await sb.exec("no-such-command-hz")).exit_code == 127
    assert (await sb.shell("no-such-command-hz")).exit_code == 127


async def test_binary_files_round_trip_byte_exact(sandbox: Factory) -> None:
    sb = await sandbox()
    data = os.urandom(5 * 1024 * 1024)
    await sb.write_file("/home/agent/blob.bin", data)
    assert await sb.read_file("/home/agent/blob.bin") == data
    r = await sb.exec(["sha256sum", "/home/agent/blob.bin"])
    assert r.stdout_text.split()[0] == hashlib.sha256(data).hexdigest()
    r = await sb.exec(["stat", "-c", "%u", "/home/agent/blob.bin"])
    assert r.stdout_text.strip() == "1000"
    r = await sb.exec(["cat"], stdin=data[:100000])
    assert r.stdout == data[:100000]
    with pytest.raises(FileNotFoundError):
        await sb.read_file("/home/agent/missing")
    r = await sb.exec(["mkfifo", "/tmp/fifo"])
    with pytest.raises(OSError):  # a FIFO must not wedge the supervisor
        await sb.read_file("/tmp/fifo")
    assert (await sb.exec(["true"])).ok


# lifecycle -------------------------------------------------------------------


async def test_files_setup_and_snapshot(sandbox: Factory, tmp_path: Path) -> None:
    sb = await sandbox(
        files={
            "/root/flag.txt": {"content": "F", "mode": 0o600},
            "/home/agent/notes.txt": {"content": "hi", "owner": "agent"},
            "/opt/app/config": "key=1",
        },
        setup=["echo set > /tmp/setup-done", "chmod 644 /tmp/setup-done"],
    )
    r = await sb.exec("cat /opt/app/config /tmp/setup-done /home/agent/notes.txt", user="root")
    assert r.stdout_text == "key=1set\nhi", r.stdout_text
    r = await sb.exec(
        ["stat", "-c", "%U %a", "/root/flag.txt", "/home/agent/notes.txt"], user="root"
    )
    assert r.stdout_text.splitlines() == ["root 600", "agent 644"]
    assert (await sb.exec("echo x >> /opt/app/config", user="root")).exit_code != 0
    await sb.exec("echo new > ~/made.txt; echo more >> ~/notes.txt; mkdir -p /tmp/d/e")
    info = await sb.snapshot(tmp_path / "snap")
    changes = json.loads((tmp_path / "snap" / "changes.json").read_text())
    assert "/home/agent/made.txt" in changes["added"]
    assert "/home/agent/notes.txt" in changes["changed"]
    assert "/tmp/d/e" in changes["added"]
    assert "/tmp/setup-done" not in changes["added"] + changes["changed"]
    assert "/home/agent/made.txt" in info.changed
    with tarfile.open(tmp_path / "snap" / "changes.tar") as tar:
        member = tar.extractfile("home/agent/made.txt")
        assert member is not None and member.read() == b"new\n"


async def test_snapshot_never_follows_the_agents_symlinks(sandbox: Factory, tmp_path: Path) -> None:
    host_secret = tmp_path / "host-secret"
    host_secret.write_text("HOST-ONLY")
    sb = await sandbox()
    await sb.exec(["ln", "-s", str(host_secret), "/home/agent/link"])
    await sb.exec(["ln", "-s", "/etc", "/tmp/etc-link"])
    await sb.snapshot(tmp_path / "snap")
    with tarfile.open(tmp_path / "snap" / "changes.tar") as tar:
        link = tar.getmember("home/agent/link")
        assert link.issym() and link.linkname == str(host_secret)
        for member in tar.getmembers():
            data = tar.extractfile(member) if member.isfile() else None
            assert data is None or b"HOST-ONLY" not in data.read()
    assert (await sb.exec(["true"])).ok  # thawed after the snapshot


async def test_task_style_files_land_with_sensible_owners(sandbox: Factory) -> None:
    sb = await sandbox(
        files={
            "/home/agent/data/jan.csv": "a,1\n",
            "/etc/app/app.conf": {"content": "password = s3cret\n", "mode": 0o600},
            "/var/backups/app.conf.bak": {"content": "password = s3cret\n", "mode": 0o644},
            "/opt/app/appctl": {"content": "#!/bin/sh\necho appctl\n", "mode": 0o755},
        }
    )
    r = await sb.exec(["stat", "-c", "%U %a %n", "/home/agent/data", "/home/agent/data/jan.csv"])
    assert r.stdout_text.splitlines() == [
        "agent 755 /home/agent/data",
        "root 644 /home/agent/data/jan.csv",
    ]
    assert (await sb.exec("touch /home/agent/data/new")).ok  # the agent owns its folders
    assert not (await sb.exec(["cat", "/etc/app/app.conf"])).ok
    assert (await sb.exec(["cat", "/var/backups/app.conf.bak"])).stdout == b"password = s3cret\n"
    assert (await sb.exec(["/opt/app/appctl"])).stdout == b"appctl\n"


async def test_specs_the_local_backend_cannot_honour_are_refused(sandbox: Factory) -> None:
    for fields in (
        {"network": "allowlist"},
        {"hardening": {"cap_add": ["NET_ADMIN"]}},
        {"hardening": {"no_new_privileges": False}},
        {"files": {"/usr/bin/evil": "x"}},
        {"files": {"/etc/passwd": "x"}},
    ):
        with pytest.raises(SandboxStartError, match=r"docker|read-only host system path"):
            await sandbox(**fields)


async def test_failing_setup_raises_and_cleans_up(sandbox: Factory) -> None:
    with pytest.raises(SandboxStartError, match=r"exit 3.*boom-cmd.*it broke"):
        await sandbox(setup=["true", "echo it broke >&2; exit 3 # boom-cmd"])


async def test_multi_service_specs_are_refused(sandbox: Factory) -> None:
    with pytest.raises(SandboxStartError, match="needs docker"):
        await sandbox(services={"web": {"image": "x"}})


async def test_unknown_backend_name() -> None:
    with pytest.raises(UnknownBackendError, match="nope"):
        get_backend("nope")
    with pytest.raises(UnknownBackendError):
        create_sandbox("nope", SandboxSpec())
    assert get_backend("local") is LocalSandbox


async def test_concurrent_sandboxes_do_not_see_each_other(sandbox: Factory) -> None:
    boxes = []
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(lambda: _append(boxes, sandbox()))
    for i, sb in enumerate(boxes):
        await sb.write_file(f"/tmp/mine-{i}", b"x")
    for i, sb in enumerate(boxes):
        r = await sb.exec(["ls", "/tmp"])
        assert r.stdout_text.split() == [f"mine-{i}"], r.stdout_text
    results = []
    async with anyio.create_task_group() as tg:  # many commands in flight on one channel
        for k in range(10):
            tg.start_soon(lambda k=k: _append(results, boxes[0].exec(f"sleep 0.2; echo {k}")))
    assert sorted(int(r.stdout_text) for r in results) == list(range(10))


async def _append(out: list[Any], coro: Awaitable[Any]) -> None:
    out.append(await coro)


async def test_stop_is_idempotent_and_cancellation_cleans_up(sandbox: Factory) -> None:
    sb = await sandbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sb.exec, ["sleep", "1000"])
        await anyio.sleep(0.3)
        tg.cancel_scope.cancel()
    await sb.stop()
    await sb.stop()
    assert not _pids_in_namespace(sb._pidns, started_before=_uptime())
    with pytest.raises(SandboxClosedError):
        await sb.exec(["true"])


async def test_context_manager_stops_on_error() -> None:
    box: list[LocalSandbox] = []
    with pytest.raises(RuntimeError):
        async with LocalSandbox(SandboxSpec()) as sb:
            box.append(sb)
            assert (await sb.exec(["true"])).ok
            raise RuntimeError("boom")
    sb = box[0]
    assert not _pids_in_namespace(sb._pidns, started_before=_uptime())
    assert sb._dir is None


async def test_info_names_backend_bwrap_and_python(sandbox: Factory) -> None:
    sb = await sandbox()
    info = sb.info()
    assert info["backend"] == "local"
    assert info["bwrap_version"].startswith("bubblewrap")
    assert "python3" in info["python"]
    assert info["uid_separation"] is (os.geteuid() == 0)


async def test_doctor_probe_says_ok() -> None:
    result = await probe()
    assert result["ok"] and result["error"] is None, result
    assert result["version"].startswith("bubblewrap")


@pytest.mark.timeout(60)
def test_a_killed_host_process_takes_its_sandbox_along(tmp_path: Path) -> None:
    """SIGKILL the process that made a sandbox: its processes die, cleanup removes the rest."""
    script = tmp_path / "crash.py"
    script.write_text(
        "import asyncio, os, signal\n"
        "from hazmat.sandbox.base import SandboxSpec\n"
        "from hazmat.sandbox.local import LocalSandbox\n"
        "async def main():\n"
        "    sb = LocalSandbox(SandboxSpec(), episode_id='crash')\n"
        "    await sb.start()\n"
        "    await sb.exec('setsid sleep 1003 >/dev/null 2>&1 &')\n"
        "    print(sb._pidns, sb._dir, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's hazmat
    )
    assert proc.returncode == -9, proc.stderr
    ns, folder = proc.stdout.split()[-2:]
    deadline = time.monotonic() + 10
    crashed = _uptime()
    while _pids_in_namespace(ns, crashed) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _pids_in_namespace(ns, crashed)
    assert not left, _host_cmdlines(left)
    assert Path(folder).exists()
    # nothing stays mounted, and the filesystem went with the sandbox
    assert not mounts_under(Path(folder)) and not Path(f"{folder}.img").exists()
    deadline = time.monotonic() + 5  # the loop device clears itself once unused
    while _loops_of(Path(folder)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _loops_of(Path(folder)), "the sandbox's loop device outlived it"
    removed = cleanup_leftovers()
    assert folder in removed and not Path(folder).exists()


@pytest.mark.timeout(60)
def test_no_user_namespaces_gives_backend_unavailable(tmp_path: Path) -> None:
    """Real failure, no mock: a child process in a user namespace whose limit is 0."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make the restricted namespace")
    script = tmp_path / "start.py"
    script.write_text(
        "import asyncio\n"
        "from hazmat.errors import HazmatError\n"
        "from hazmat.sandbox.base import SandboxSpec\n"
        "from hazmat.sandbox.local import LocalSandbox\n"
        "async def main():\n"
        "    try:\n"
        "        async with LocalSandbox(SandboxSpec()):\n"
        "            print('STARTED')\n"
        "    except HazmatError as e:\n"
        "        print(type(e).__name__, '|', e.one_line())\n"
        "asyncio.run(main())\n"
    )
    inner = f"echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} {script}"
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", inner],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out = [ln for ln in proc.stdout.splitlines() if " | " in ln or "STARTED" in ln]
    assert out, (proc.stdout, proc.stderr)
    assert out[-1].startswith(BackendUnavailableError.__name__), out
    assert "--sandbox docker" in out[-1]
