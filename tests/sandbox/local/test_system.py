"""The local sandbox's system (``hazmat.sandbox.local.system``): the environment's root
file system, not the host's, and the same answers as Docker's box.

Issue 15, failure 4: "the local backend shows the host's ``/usr``, so the same task sees
different tools on each backend: results depend on the machine".
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmat.sandbox import SandboxSpec, create_sandbox
from hazmat.sandbox.local.plan import Plan, bwrap_args
from hazmat.sandbox.local.system import rootfs_entries
from hazmat.sandbox.rootfs import HOST, MOUNT_POINTS, base_source

pytestmark = [pytest.mark.anyio, pytest.mark.local, pytest.mark.timeout(300)]

SAME = [
    "cat /etc/debian_version",
    "python3 -c 'import sys; print(sys.version)'",
    "command -v xxd strings tree curl git || true",
    "ls /usr/bin | sha256sum",
    "dpkg-query -W -f '${Package} ${Version}\\n' | sha256sum",
    "cat /etc/os-release",
]


@pytest.fixture
def host_markers() -> Iterator[list[str]]:
    """Marker files made on the host in its system folders for one test (removed after)."""
    token = secrets.token_hex(6)
    paths = [
        Path(f"/usr/local/share/hazmat-host-marker-{token}"),
        Path(f"/usr/lib/hazmat-host-marker-{token}"),
        Path(f"/etc/hazmat-host-marker-{token}"),
        Path(f"/var/lib/hazmat-host-marker-{token}"),
        Path(f"/opt/hazmat-host-marker-{token}"),
    ]
    made = []
    try:
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("host only\n")
            made.append(p)
        yield [str(p) for p in made]
    finally:
        for p in made:
            p.unlink(missing_ok=True)


@pytest.mark.docker
async def test_the_hosts_system_is_not_visible(host_markers: list[str]) -> None:
    """Markers put in the host's /usr, /etc, /var/lib and /opt are absent inside; the
    sandbox names the base environment's hash and runs the tree's own python."""
    async with create_sandbox("local", SandboxSpec()) as sb:
        for path in host_markers:
            r = await sb.exec(["test", "-e", path], user="root")
            assert r.exit_code == 1, f"host file {path} is visible in the sandbox"
        assert sb.environment == base_source().hash
        info = sb.info()
        assert info["env"] == sb.environment and info["python"] == "/usr/bin/python3"
        r = await sb.exec("ls -ld /var /etc /opt /usr; touch /usr/x /etc/x", user="root")
        assert "Read-only file system" in r.stderr_text and r.exit_code != 0
        assert [ln.split()[0] for ln in r.stdout_text.splitlines()] == ["drwxr-xr-x"] * 4


async def test_the_fallback_is_the_host_and_says_so(
    host_markers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HAZMAT_LOCAL_ROOT=host (what a machine without Docker and mmdebstrap gets): the
    host's /usr, recorded as the environment "host" (so this test can fail: the marker
    in /usr is seen here and not on the tree)."""
    monkeypatch.setenv("HAZMAT_LOCAL_ROOT", HOST)
    async with create_sandbox("local", SandboxSpec()) as sb:
        assert sb.environment == HOST and sb.info()["image"] == HOST
        usr = next(p for p in host_markers if p.startswith("/usr/local"))
        assert (await sb.exec(["cat", usr])).stdout_text == "host only\n"


NO_ROOTFS = """
import asyncio, json, sys
from hazmat.sandbox import SandboxSpec, create_sandbox

async def main():
    async with create_sandbox("local", SandboxSpec()) as sb:
        seen = await sb.exec(["test", "-e", sys.argv[1]])
        print(json.dumps({"env": sb.environment, "info": sb.info()["env"], "seen": seen.ok}))

asyncio.run(main())
"""


def test_without_docker_or_mmdebstrap_the_host_is_recorded(
    host_markers: list[str], tmp_path: Path
) -> None:
    """A machine where the base environment's tree cannot be made (the daemon does not
    answer, no mmdebstrap on PATH, nothing cached): the sandbox still starts, on the
    host's /usr, says so in a warning, and records the environment "host"."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "bin").mkdir()
    env = {
        **os.environ,
        "PATH": str(tmp_path / "bin"),
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        "HAZMAT_ROOTFS_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }
    env.pop("HAZMAT_LOCAL_ROOT", None)
    usr = next(p for p in host_markers if p.startswith("/usr/local"))
    out = subprocess.run(
        [sys.executable, "-c", NO_ROOTFS, usr],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    [line] = [ln for ln in out.stdout.splitlines() if ln.startswith('{"env"')]
    assert json.loads(line) == {"env": HOST, "info": HOST, "seen": True}
    assert "local_rootfs_unavailable" in out.stdout + out.stderr
    assert "no Docker and no mmdebstrap" in out.stdout + out.stderr


@pytest.mark.docker
async def test_the_same_command_answers_the_same_on_both_backends(sandbox_image: str) -> None:
    outputs: dict[str, list[str]] = {}
    envs = {}
    ids: dict[str, str | None] = {"docker_env": None}
    for backend in ("local", "docker"):
        async with create_sandbox(backend, SandboxSpec()) as sb:
            envs[backend] = sb.environment
            if backend == "docker":
                ids["docker_env"] = _label_hash(sb.info()["image_id"])
            outputs[backend] = []
            for command in SAME:
                r = await sb.exec(["/bin/bash", "-c", command])
                assert r.exit_code == 0, (backend, command, r.stderr_text)
                outputs[backend].append(r.stdout_text)
    assert outputs["local"] == outputs["docker"]
    assert envs["local"] == base_source().hash
    # docker runs hazmat-sandbox:latest: this tree's build unless another checkout sharing
    # the daemon rebuilt it meanwhile; either way it names the environment it ran
    assert envs["docker"] == (ids["docker_env"] or envs["local"])
    assert "12." in outputs["local"][0] and "3.11" in outputs["local"][1]


def _label_hash(image_id: str) -> str | None:
    import docker

    client = docker.from_env()
    try:
        return client.images.get(image_id).labels.get("hazmat.content_hash")
    finally:
        client.close()


def _plan(tree: Path, files: dict[str, str]) -> list[tuple[str, str, str]]:
    spec = SandboxSpec(files=files)
    binds = tuple(("--ro-bind", f"/b/extra{p}", p) for p in files)
    plan = Plan(
        spec=spec,
        separate=True,
        python="/usr/bin/python3",
        python_prefix=None,
        etc=(("/b/etc/passwd", "passwd"), ("/b/etc/hosts", "hosts")),
        binds=binds,
        info_fd=3,
        system=rootfs_entries(tree),
        root=str(tree),
    )
    args, _ = bwrap_args(plan)
    return list(zip(args, args[1:], args[2:], strict=False))


def test_the_plan_binds_the_tree_not_the_host(tmp_path: Path) -> None:
    """Pure: every system part comes from the tree, no host /etc file is bound; a folder
    is bound whole unless a placed file lies in it (then entry by entry, the file's own
    folder left out); the synthesized /etc files go over the tree's."""
    tree = tmp_path / "tree"
    for d in ("usr/bin", "etc/ssl", "etc/app", "var/lib/dpkg", "var/tmp", "opt/tool", "proc"):
        (tree / d).mkdir(parents=True)
    for f in (*MOUNT_POINTS, "etc/debian_version"):
        (tree / f).write_text("x")
    (tree / "bin").symlink_to("usr/bin")
    entries = rootfs_entries(tree)
    assert ("/bin", "usr/bin") in entries and ("/usr", None) in entries
    assert ("/etc", None) in entries and ("/var", None) not in entries  # var/tmp is ours
    assert not {"/proc", "/var/tmp"} & {p for p, _ in entries}

    pairs = _plan(tree, {})
    binds = [(src, dest) for op, src, dest in pairs if op in ("--ro-bind", "--ro-bind-try")]
    assert (f"{tree}/etc", "/etc") in binds and (f"{tree}/opt", "/opt") in binds
    assert (f"{tree}/usr", "/usr") in binds and (f"{tree}/var/lib", "/var/lib") in binds
    assert binds.index(("/b/etc/passwd", "/etc/passwd")) > binds.index((f"{tree}/etc", "/etc"))
    assert not any(d.startswith(("/etc/", "/opt/")) and s.startswith(str(tree)) for s, d in binds)
    assert not any(src.startswith("/etc/") for src, _dest in binds)  # nothing of the host's
    assert ("--symlink", "usr/bin", "/bin") in pairs

    pairs = _plan(tree, {"/etc/app/conf": "mine", "/opt/new/x": "mine"})
    binds = [(src, dest) for op, src, dest in pairs if op == "--ro-bind"]
    assert (f"{tree}/etc", "/etc") not in binds and (f"{tree}/opt", "/opt") not in binds
    assert (f"{tree}/etc/debian_version", "/etc/debian_version") in binds
    assert (f"{tree}/opt/tool", "/opt/tool") in binds
    assert not any(dest == "/etc/app" for _src, dest in binds)  # the placed file wins
    assert [s for s, d in binds if d == "/etc/passwd"] == ["/b/etc/passwd"]
