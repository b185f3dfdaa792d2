"""Reading a local sandbox's cgroup counters: which limit, if any, its processes hit."""

from __future__ import annotations

from pathlib import Path

from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.local.limits import cgroup_exhausted


def _cgroup(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for fname, text in files.items():
        (folder / fname).write_text(text)
    return folder


def test_counters_name_the_resource(tmp_path: Path) -> None:
    spec = SandboxSpec()
    quiet_mem = _cgroup(tmp_path, "m0", {"memory.oom_control": "oom_kill_disable 0\noom_kill 0\n"})
    quiet_pids = _cgroup(tmp_path, "p0", {"pids.events": "max 0\n"})
    assert cgroup_exhausted([quiet_mem, quiet_pids], spec) is None
    oom_v1 = _cgroup(tmp_path, "m1", {"memory.oom_control": "under_oom 0\noom_kill 2\n"})
    found = cgroup_exhausted([quiet_pids, oom_v1], spec)
    assert found is not None and (found.resource, found.limit) == ("memory", 1024)
    oom_v2 = _cgroup(tmp_path, "v2", {"memory.events": "low 0\noom 1\noom_kill 1\n"})
    assert (cgroup_exhausted([oom_v2], spec) or found).evidence == "cgroup oom_kill 1"
    forks = _cgroup(tmp_path, "p1", {"pids.events": "max 17\n"})
    found = cgroup_exhausted([quiet_mem, forks], spec)
    assert found is not None and (found.resource, found.limit) == ("pids", 256)
    assert cgroup_exhausted([tmp_path / "gone"], spec) is None
