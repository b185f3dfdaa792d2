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
from hazmat.sandbox.rootfs import HOST, base_source

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


@pytest.mark.docker
async def test_the_same_command_answers_the_same_on_both_backends(sandbox_image: str) -> None:
    outputs: dict[str, list[str]] = {}
    envs = {}
    for backend in ("local", "docker"):
        async with create_sandbox(backend, SandboxSpec()) as sb:
            envs[backend] = sb.environment
            outputs[backend] = []
            for command in SAME:
                r = await sb.exec(["/bin/bash", "-c", command])
                assert r.exit_code == 0, (backend, command, r.stderr_text)
                outputs[backend].append(r.stdout_text)
    assert outputs["local"] == outputs["docker"]
    assert envs["local"] == envs["docker"] == base_source().hash
    assert "12." in outputs["local"][0] and "3.11" in outputs["local"][1]


def test_the_plan_binds_the_tree_not_the_host(tmp_path: Path) -> None:
    """Pure: every system part comes from the tree, no host /etc file is bound, the
    synthesized /etc files and a placed file win over the tree's entries."""
    tree = tmp_path / "tree"
    for d in ("usr/bin", "etc/ssl", "etc/app", "var/lib/dpkg", "var/tmp", "opt/tool", "proc"):
        (tree / d).mkdir(parents=True)
    for f in ("etc/passwd", "etc/debian_version", "etc/shadow"):
        (tree / f).write_text("x")
    (tree / "bin").symlink_to("usr/bin")
    entries = rootfs_entries(tree)
    assert ("/bin", "usr/bin") in entries and ("/usr", None) in entries
    assert not {"/proc", "/var/tmp", "/etc/shadow"} & {p for p, _ in entries}
    spec = SandboxSpec(files={"/etc/app/conf": "mine"})
    plan = Plan(
        spec=spec,
        separate=True,
        python="/usr/bin/python3",
        python_prefix=None,
        etc=(("/b/etc/passwd", "passwd"),),
        binds=(("--ro-bind", "/b/extra/etc/app/conf", "/etc/app/conf"),),
        info_fd=3,
        system=entries,
        root=str(tree),
    )
    args, _ = bwrap_args(plan)
    pairs = list(zip(args, args[1:], args[2:], strict=False))
    binds = {(src, dest) for op, src, dest in pairs if op in ("--ro-bind", "--ro-bind-try")}
    assert (f"{tree}/usr", "/usr") in binds and (
        f"{tree}/etc/debian_version",
        "/etc/debian_version",
    ) in binds
    assert (f"{tree}/var/lib", "/var/lib") in binds and (f"{tree}/opt/tool", "/opt/tool") in binds
    assert ("/b/etc/passwd", "/etc/passwd") in binds
    assert not any(dest == "/etc/passwd" and src != "/b/etc/passwd" for src, dest in binds)
    assert not any(dest == "/etc/app" for _src, dest in binds)  # the placed file wins
    assert not any(src.startswith("/etc/") for src, _dest in binds)  # nothing of the host's
    assert ("--symlink", "usr/bin", "/bin") in pairs
