"""The Docker backend against the real daemon: containment, limits, channel, services.

Every test makes its sandboxes under a unique run id and the ``no_leftovers`` fixture
asserts that nothing labelled with it (container, network, volume) survives the test.
Traffic goes only to 127.0.0.1, the docker0 gateway of this machine, or our containers.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hazmat.errors import (
    BackendUnavailableError,
    FileTooLargeError,
    ImageError,
    SandboxClosedError,
    SandboxStartError,
)
from hazmat.sandbox.base import Hardening, Limits, SandboxSpec, ServiceSpec

pytestmark = [pytest.mark.docker, pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def run_id(sandbox_image: str) -> Iterator[str]:
    """A unique run id; after the test nothing labelled with it may remain."""
    import docker

    rid = f"test-{uuid.uuid4().hex[:10]}"
    yield rid
    client = docker.from_env()
    flt = {"label": [f"hazmat.run={rid}"]}
    left = {
        "containers": [c.name for c in client.containers.list(all=True, filters=flt)],
        "networks": [n.name for n in client.networks.list(filters=flt)],
        "volumes": [v.name for v in client.volumes.list(filters=flt)],
    }
    from hazmat.sandbox.docker.ledger import cleanup

    cleanup(rid)
    assert left == {"containers": [], "networks": [], "volumes": []}


def make(spec: SandboxSpec, run_id: str) -> Any:
    from hazmat.sandbox.docker import DockerSandbox

    return DockerSandbox(spec, run_id=run_id, episode_id=uuid.uuid4().hex[:8])


class Listener:
    """A TCP listener on the host that records whether anyone connected."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connected = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connected = True
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def docker0_gateway() -> str:
    import ipaddress

    import docker

    config = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


# containment -----------------------------------------------------------------


async def test_root_fs_read_only_workspace_writable(run_id: str) -> None:
    async with make(SandboxSpec(), run_id) as sb:
        for path in ("/x", "/etc/x", "/usr/bin/x", "/opt/hazmat/x"):
            r = await sb.exec(["touch", path])
            assert r.exit_code != 0, path
        r = await sb.exec(["touch", "/x"], user="root")
        assert r.exit_code != 0 and "Read-only file system" in r.stderr_text
        r = await sb.exec("echo hi > /home/agent/a && echo t > /tmp/b && cat /home/agent/a")
        assert r.ok and r.stdout_text == "hi\n"
        with pytest.raises(PermissionError):
            await sb.write_file("/etc/evil", b"x")
        mounts = (await sb.exec(["cat", "/proc/mounts"])).stdout_text
        assert "docker.sock" not in mounts


async def test_no_network(run_id: str) -> None:
    listeners = [Listener("127.0.0.1"), Listener(docker0_gateway())]
    try:
        async with make(SandboxSpec(), run_id) as sb:
            links = (await sb.exec(["ip", "-o", "link"])).stdout_text.strip().splitlines()
            assert len(links) == 1 and ": lo:" in links[0]
            for lst in listeners:
                host, port = lst.sock.getsockname()
                r = await sb.exec(["curl", "-sS", "--max-time", "2", f"http://{host}:{port}/"])
                assert r.exit_code != 0
                r = await sb.exec(
                    [
                        "python3",
                        "-c",
                        f"import socket; socket.create_connection(('{host}', {port}), timeout=2)",
                    ]
                )
                assert r.exit_code != 0
        assert not any(lst.connected for lst in listeners)
    finally:
        for lst in listeners:
            lst.close()


async def test_host_processes_and_files_invisible(run_id: str, tmp_path: Path) -> None:
    marker = tmp_path / f"host-secret-{uuid.uuid4().hex}"
    marker.write_text("secret")
    async with make(SandboxSpec(), run_id) as sb:
        r = await sb.exec(["ps", "-eo", "pid,args"])
        assert "pytest" not in r.stdout_text and "dockerd" not in r.stdout_text
        assert len(r.stdout_text.strip().splitlines()) < 12
        r = await sb.exec(["ls", str(marker)])
        assert r.exit_code != 0
        r = await sb.exec(f"find / -xdev -name '{marker.name}' 2>/dev/null | head -1")
        assert r.stdout_text == ""


async def test_capabilities_empty(run_id: str) -> None:
    async with make(SandboxSpec(), run_id) as sb:
        # CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID
        supervisor_caps = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7)
        r = await sb.exec(["grep", "^Cap", "/proc/self/status"])
        caps = dict(line.split(":\t") for line in r.stdout_text.strip().splitlines())
        assert int(caps["CapEff"], 16) == 0, caps  # the agent has none at all
        assert int(caps["CapPrm"], 16) == 0
        assert int(caps["CapBnd"], 16) == supervisor_caps
        shell = await sb.shell("grep ^CapEff /proc/self/status; id -u")
        assert shell.stdout_text.split()[1:] == ["0000000000000000", "1000"]
        # root (the supervisor, the scorer) keeps only what it needs to drop to the agent
        r = await sb.exec(["grep", "^Cap", "/proc/self/status"], user="root")
        caps = dict(line.split(":\t") for line in r.stdout_text.strip().splitlines())
        assert int(caps["CapEff"], 16) == supervisor_caps
        r = await sb.exec(["grep", "NoNewPrivs", "/proc/self/status"])
        assert r.stdout_text.split()[-1] == "1"
        info = sb.info()
        assert info["hardening"]["cap_drop"] == ["ALL"] and not info["hardening"]["loosened"]


async def test_agent_cannot_touch_its_supervisor(run_id: str) -> None:
    async with make(SandboxSpec(), run_id) as sb:
        r = await sb.shell("kill -9 1; echo '{\"id\": 1}' > /proc/1/fd/1; ls /proc/1/fd")
        assert r.exit_code != 0
        assert "Operation not permitted" in r.stderr_text or "Permission denied" in r.stderr_text
        again = await sb.exec(["echo", "still here"])
        assert again.stdout_text == "still here\n"


async def test_env_of_host_never_inside(run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-must-not-leak")
    async with make(SandboxSpec(env={"TASK_VAR": "1"}), run_id) as sb:
        r = await sb.exec("env; cat /proc/1/environ; cat /proc/self/environ")
        assert "sk-test-must-not-leak" not in r.stdout_text
        assert "OPENAI_API_KEY" not in r.stdout_text
        assert "TASK_VAR=1" in r.stdout_text
        r = await sb.shell("env")
        assert "OPENAI_API_KEY" not in r.stdout_text


# limits ----------------------------------------------------------------------


async def test_fork_bomb_stopped_by_pids_limit(run_id: str) -> None:
    spec = SandboxSpec(limits=Limits(pids=64))
    async with make(spec, run_id) as sb:
        r = await sb.exec("bomb() { bomb | bomb & }; bomb; sleep 3", timeout=5)
        assert r.timed_out or r.exit_code != 0 or b"fork" in r.stderr.lower()
        r = await sb.exec(["cat", "/sys/fs/cgroup/pids/pids.max"])
        if r.ok:
            assert r.stdout_text.strip() == "64"
        r = await sb.exec(["echo", "alive"], timeout=20)
        assert r.stdout_text == "alive\n"
    assert os.system("true") == 0


async def test_memory_bomb_killed(run_id: str) -> None:
    spec = SandboxSpec(limits=Limits(memory_mb=128))
    async with make(spec, run_id) as sb:
        r = await sb.exec(
            [
                "python3",
                "-c",
                "a = bytearray(600 * 2**20); a[::4096] = b'x' * len(a[::4096]); print('survived')",
            ],
            timeout=20,
        )
        assert r.exit_code != 0 and "survived" not in r.stdout_text
        assert (await sb.exec(["true"])).ok


async def test_yes_is_capped_and_truncated(run_id: str) -> None:
    spec = SandboxSpec(limits=Limits(output_bytes=64 * 1024))
    async with make(spec, run_id) as sb:
        r = await sb.exec(["yes"], timeout=1.5)
        assert r.timed_out and r.exit_code == 124
        assert r.truncated and len(r.stdout) == 64 * 1024 and r.stdout_total > 64 * 1024
        assert r.stdout.startswith(b"y\ny\n")


async def test_sleep_infinity_and_detached_child_killed(run_id: str) -> None:
    async with make(SandboxSpec(), run_id) as sb:
        r = await sb.exec("setsid sleep 1001 & (sleep 1002 &) ; sleep infinity", timeout=1)
        assert r.timed_out and r.exit_code == 124
        r = await sb.exec(["ps", "-eo", "args"])
        assert "sleep" not in r.stdout_text, r.stdout_text
        r = await sb.shell("sleep infinity", timeout=1)
        assert r.timed_out


async def test_file_size_limit(run_id: str) -> None:
    spec = SandboxSpec(limits=Limits(file_size_mb=1, file_bytes=4096))
    async with make(spec, run_id) as sb:
        r = await sb.exec("head -c 3000000 /dev/zero > /tmp/big; stat -c %s /tmp/big")
        assert r.exit_code != 0 or int(r.stdout_text.split()[-1]) <= 1024 * 1024
        with pytest.raises(FileTooLargeError):
            await sb.write_file("/tmp/x", b"x" * 5000)
        with pytest.raises(FileTooLargeError):
            await sb.read_file("/tmp/big")


# the channel -----------------------------------------------------------------


async def test_shell_state_persists_and_exec_basics(run_id: str) -> None:
    async with make(SandboxSpec(), run_id) as sb:
        await sb.shell("cd /tmp && export HZ=42 && greet() { echo hello $1; } && alias ll='ls -d'")
        r = await sb.shell("pwd; echo $HZ; greet you; ll /tmp")
        assert r.stdout_text == "/tmp\n42\nhello you\n/tmp\n"
        r = await sb.exec(["no-such-command-xyz"])
        assert r.exit_code == 127
        r = await sb.exec(["cat"], stdin=b"in\n", cwd="/tmp", env={"A": "b"})
        assert r.stdout == b"in\n"
        r = await sb.exec(["id", "-un"])
        assert r.stdout_text == "agent\n"
        r = await sb.exec(["id", "-un"], user="root")
        assert r.stdout_text == "root\n"


async def test_binary_round_trip(run_id: str) -> None:
    data = os.urandom(3 * 1024 * 1024) + bytes(range(256))
    async with make(SandboxSpec(), run_id) as sb:
        await sb.write_file("/home/agent/deep/blob.bin", data, mode=0o600)
        assert await sb.read_file("/home/agent/deep/blob.bin") == data
        r = await sb.exec(["cat", "/home/agent/deep/blob.bin"])
        assert r.stdout == data
        r = await sb.exec(["sha256sum"], stdin=data)
        import hashlib

        assert r.stdout_text.split()[0] == hashlib.sha256(data).hexdigest()
        with pytest.raises(FileNotFoundError):
            await sb.read_file("/home/agent/nope")


async def test_files_setup_snapshot_freeze(run_id: str, tmp_path: Path) -> None:
    spec = SandboxSpec(
        files={
            "/root/flag.txt": {"content": "FLAG{x}", "mode": 0o600},
            "/home/agent/notes/todo.txt": {"content": "hi", "owner": "agent"},
            "/etc/app/config.ini": "key=1\n",
        },
        setup=["cat /root/flag.txt > /tmp/copied", "mkdir /tmp/setup-dir"],
    )
    async with make(spec, run_id) as sb:
        r = await sb.exec(["cat", "/root/flag.txt"])
        assert r.exit_code != 0
        r = await sb.exec(["cat", "/root/flag.txt"], user="root")
        assert r.stdout_text == "FLAG{x}"
        r = await sb.exec(
            "stat -c '%U %a' /home/agent/notes /home/agent/notes/todo.txt; "
            "cat /etc/app/config.ini; echo more >> /home/agent/notes/todo.txt"
        )
        assert r.ok and r.stdout_text == "agent 755\nagent 644\nkey=1\n", r.stderr_text
        await sb.exec("echo loot > /home/agent/loot.txt")
        await sb.freeze()
        info = await sb.snapshot(tmp_path / "snap")
        assert "/home/agent/loot.txt" in info.changed
        assert (tmp_path / "snap" / "changes.json").is_file()
        import tarfile

        with tarfile.open(tmp_path / "snap" / "changes.tar") as tar:
            names = tar.getnames()
            member = tar.extractfile("home/agent/loot.txt")
            assert member is not None and member.read() == b"loot\n"
        assert "tmp/copied" in names


async def test_setup_failure_is_clear_and_cleans_up(run_id: str) -> None:
    spec = SandboxSpec(setup=["true", "echo broken-thing >&2; exit 3"])
    with pytest.raises(SandboxStartError) as err:
        async with make(spec, run_id):
            pass
    assert "exit 3" in str(err.value) and "broken-thing" in str(err.value)


async def test_loosened_hardening_allows_setuid_task(run_id: str) -> None:
    spec = SandboxSpec(
        hardening=Hardening(
            read_only_root=False,
            no_new_privileges=False,
            cap_add=("CHOWN", "FOWNER", "SETUID", "SETGID", "DAC_OVERRIDE"),
        ),
        files={"/root/flag.txt": {"content": "F", "mode": 0o600}},
        setup=["cp /usr/bin/find /usr/local/bin/find && chmod u+s /usr/local/bin/find"],
    )
    async with make(spec, run_id) as sb:
        r = await sb.exec("/usr/local/bin/find /root/flag.txt -exec cat {} \\;")
        assert r.stdout_text == "F", r.stderr_text
        assert sb.info()["hardening"]["loosened"]


async def test_after_stop_calls_raise(run_id: str) -> None:
    sb = make(SandboxSpec(), run_id)
    async with sb:
        pass
    await sb.stop()
    with pytest.raises(SandboxClosedError):
        await sb.exec(["true"])


# services --------------------------------------------------------------------


async def test_services_reach_each_other_not_outside(run_id: str, tmp_path: Path) -> None:
    http = ["python3", "-m", "http.server", "8000", "--directory", "/srv"]
    check = "python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')\""
    spec = SandboxSpec(
        network="internal",
        services={
            "web": ServiceSpec(
                command=http, files={"/srv/index.html": "hello from web"}, healthcheck=check
            ),
            "api": ServiceSpec(
                command=http, files={"/srv/index.html": "hello from api"}, healthcheck=check
            ),
        },
    )
    listeners = [Listener("127.0.0.1"), Listener(docker0_gateway()), Listener("0.0.0.0")]
    try:
        async with make(spec, run_id) as sb:
            import docker

            net = docker.from_env().networks.get(sb.info()["network"]).attrs
            assert net["Internal"] is True
            gateway = net["IPAM"]["Config"][0].get("Gateway")
            r = await sb.exec(["curl", "-sS", "--max-time", "5", "http://web:8000/"])
            assert r.stdout_text == "hello from web", r.stderr_text
            r = await sb.exec(["curl", "-sS", "--max-time", "5", "http://api:8000/"], service="web")
            assert r.stdout_text == "hello from api", r.stderr_text
            for where in (None, "web"):
                for lst in listeners:
                    host, port = lst.sock.getsockname()
                    if host == "0.0.0.0":  # the host side of our own network
                        if not gateway:
                            continue
                        host = gateway
                    r = await sb.exec(
                        ["curl", "-sS", "--max-time", "1", f"http://{host}:{port}/"], service=where
                    )
                    assert r.exit_code != 0
                r = await sb.exec(
                    ["curl", "-sS", "--max-time", "1", "http://1.1.1.1/"], service=where
                )
                # the box's attempt ends at its network sentinel's sinkhole; a service has
                # no sentinel and no route
                assert r.exit_code != 0 or (
                    where is None and r.stdout_text.startswith("blocked by the hazmat network")
                )
        assert not any(lst.connected for lst in listeners)
    finally:
        for lst in listeners:
            lst.close()


async def test_service_health_check_failure(run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import hazmat.sandbox.docker.services as backend

    monkeypatch.setattr(backend, "HEALTH_TIMEOUT", 2.0)
    spec = SandboxSpec(
        services={"db": ServiceSpec(command=["sleep", "infinity"], healthcheck="exit 1")}
    )
    with pytest.raises(SandboxStartError, match="health check"):
        async with make(spec, run_id):
            pass


async def test_service_built_from_folder(run_id: str, tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "Dockerfile").write_text(
        "ARG SANDBOX=hazmat-sandbox:latest\nFROM ${SANDBOX}\nUSER root\n"
        "RUN mkdir -p /srv && echo built > /srv/index.html\n"
        'CMD ["python3", "-m", "http.server", "80", "--directory", "/srv"]\n'
    )
    check = "python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:80/')\""
    spec = SandboxSpec(services={"site": ServiceSpec(build=str(folder), healthcheck=check)})
    async with make(spec, run_id) as sb:
        r = await sb.exec(["curl", "-sS", "--max-time", "5", "http://site/"])
        assert r.stdout_text == "built\n", r.stderr_text


# errors ----------------------------------------------------------------------


async def test_missing_image(run_id: str) -> None:
    with pytest.raises(ImageError) as err:
        async with make(SandboxSpec(image="hazmat-sandbox:does-not-exist"), run_id):
            pass
    assert "hazmat image build" in err.value.one_line()


async def test_unreachable_daemon(run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(BackendUnavailableError) as err:
        async with make(SandboxSpec(), run_id):
            pass
    assert "cannot reach the Docker daemon" in str(err.value)
    assert "--sandbox local" in err.value.one_line()


def test_cleanup_removes_labelled_leftovers(run_id: str) -> None:
    import docker

    from hazmat.sandbox.docker.ledger import cleanup

    client = docker.from_env()
    labels = {"hazmat": "1", "hazmat.run": run_id, "hazmat.episode": "e"}
    client.containers.create("hazmat-sandbox:latest", ["true"], labels=labels, network_mode="none")
    client.networks.create(f"hz-{run_id}", internal=True, labels=labels)
    client.volumes.create(f"hz-{run_id}", labels=labels)
    counts = cleanup(run_id)
    assert counts["containers"] == 1 and counts["networks"] == 1 and counts["volumes"] == 1
