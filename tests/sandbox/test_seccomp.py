"""The one seccomp profile, rendered for both backends, and each denial performed in a
real sandbox of each backend (a probe calls the syscall by number and reports errno)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hazmat.sandbox import SandboxSpec, create_sandbox
from hazmat.sandbox.seccomp import (
    CLONE_NAMESPACE_FLAGS,
    DENIED,
    ENOSYS_DENIED,
    bpf_program,
    docker_profile,
    syscall_numbers,
)

pytestmark = pytest.mark.anyio

# Calls each syscall number given with all-zero arguments (EPERM/ENOSYS from the filter
# come before the kernel looks at them), then clone(CLONE_NEWUSER), then an allowed call.
PROBE = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
for name, nr in json.loads(sys.argv[1]).items():
    ctypes.set_errno(0)
    rc = libc.syscall(nr, 0, 0, 0, 0, 0, 0)
    out[name] = [rc, ctypes.get_errno()]
ctypes.set_errno(0)
rc = libc.syscall(int(sys.argv[2]), int(sys.argv[3]) | 17, 0, 0, 0, 0)  # 17 = SIGCHLD
if rc == 0:
    os._exit(0)
out["clone_newuser"] = [rc, ctypes.get_errno()]
ctypes.set_errno(0)
out["getpid"] = [libc.syscall(39 if os.uname().machine == "x86_64" else 172), 0]
pid = os.fork()
if pid == 0:
    os._exit(7)
out["fork"] = [os.waitpid(pid, 0)[1] >> 8, 0]
print(json.dumps(out))
"""

EXPECTED = {name: 38 if name in ENOSYS_DENIED else 1 for name in DENIED}


def test_one_list_rendered_twice() -> None:
    """Both renderings come from :data:`DENIED`: the Docker JSON names every one with its
    errno, the BPF program holds a return per number."""
    profile = json.loads(docker_profile("x86_64"))
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "SCMP_ARCH_X86" in profile["architectures"]  # compat ABIs filtered by name
    named = {n: r["errnoRet"] for r in profile["syscalls"] if "args" not in r for n in r["names"]}
    assert named == EXPECTED
    clone_rules = [r for r in profile["syscalls"] if r["names"] == ["clone"]]
    assert {r["args"][0]["value"] for r in clone_rules} == set(CLONE_NAMESPACE_FLAGS.values())
    for machine in ("x86_64", "aarch64"):
        numbers = syscall_numbers(machine)
        missing = {"uselib", "_sysctl", "nfsservctl", "iopl", "ioperm"}  # none on aarch64
        assert set(numbers) == set(DENIED) - (missing if machine == "aarch64" else set())
        prog = bpf_program(machine)
        assert prog is not None and len(prog) % 8 == 0
        assert len(prog) // 8 >= 2 * len(numbers)


async def _probe(backend: str, spec: SandboxSpec) -> dict[str, list[int]]:
    numbers = syscall_numbers()
    if not numbers:
        pytest.skip(f"no syscall table for {os.uname().machine}")
    clone_nr = {"x86_64": 56, "aarch64": 220}[os.uname().machine]
    sb = create_sandbox(backend, spec, run_id="test-seccomp", episode_id="probe")
    try:
        await sb.start()
        res = await sb.exec(
            [
                "python3",
                "-c",
                PROBE,
                json.dumps(numbers),
                str(clone_nr),
                str(CLONE_NAMESPACE_FLAGS["CLONE_NEWUSER"]),
            ],
            timeout=60,
        )
        assert res.exit_code == 0, res.stderr
        out: dict[str, list[int]] = json.loads(res.stdout)
        return out
    finally:
        await sb.stop()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=["local", pytest.param("docker", marks=pytest.mark.docker)])
async def probed(request: Any) -> AsyncIterator[tuple[str, dict[str, list[int]]]]:
    backend = str(request.param)
    spec = SandboxSpec(image="hazmat-sandbox", sentinel=False)
    yield backend, await _probe(backend, spec)


@pytest.mark.parametrize("name", DENIED)
async def test_denied_in_the_sandbox(probed: tuple[str, dict[str, list[int]]], name: str) -> None:
    """The agent calls ``name`` inside a real sandbox: it fails with the profile's errno
    (EPERM, or ENOSYS for io_uring and clone3), never runs."""
    backend, out = probed
    if name not in out:
        pytest.skip(f"{name} has no number on {os.uname().machine}")
    rc, errno = out[name]
    assert (rc, errno) == (-1, EXPECTED[name]), f"{backend}: {name} -> {rc}, errno {errno}"


async def test_namespace_clone_denied_plain_fork_works(
    probed: tuple[str, dict[str, list[int]]],
) -> None:
    """clone(CLONE_NEWUSER) fails with EPERM in both backends; a plain fork and getpid work."""
    backend, out = probed
    assert out["clone_newuser"] == [-1, 1], backend
    assert out["getpid"][0] > 0 and out["fork"][0] == 7, backend
