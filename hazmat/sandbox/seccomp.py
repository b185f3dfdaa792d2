"""The one seccomp profile of every backend: which syscalls a sandbox may not make.

The list (:data:`DENIED`) is written once, here, and rendered twice:

- :func:`docker_profile`: the JSON profile the Docker backend passes as
  ``security_opt=["seccomp=<json>"]``. It *replaces* the daemon's default profile, so
  it also carries what that default gave and a default-allow list would lose: namespace
  flags on ``clone`` (a user namespace is root's powers over a fresh set of kernel
  objects), ``clone3`` (its flags sit in memory a filter cannot read: ENOSYS, so libc
  falls back to ``clone``). Syscalls are named, so libseccomp resolves them for the
  native ABI and the compat ones (i386, x32) alike.
- :func:`bpf_program`: the classic-BPF program the local backend hands to
  ``bwrap --seccomp`` (numbers per machine; a foreign ABI or x32 kills the process).

Denied calls fail with EPERM; io_uring and ``clone3`` with ENOSYS, the answer of a
kernel without them, so programs take their fallback instead of failing.

Why each is denied (no agent task needs any of them; each widens the kernel surface an
agent can reach, or reaches outside the sandbox):

- ``io_uring_*``: a second syscall interface that bypasses seccomp for the operations
  it carries, and a frequent source of kernel exploits;
- ``bpf``, ``perf_event_open``, ``userfaultfd``: exploit primitives (verifier bugs,
  side channels, race-window stretching);
- ``keyctl``, ``add_key``, ``request_key``: the kernel keyring is not namespaced;
- ``kexec_*``, ``init_module``, ``finit_module``, ``delete_module``: kernel code;
- ``open_by_handle_at``, ``name_to_handle_at``: open a file by inode handle, past the
  mount (the "shocker" container escape);
- mounts, ``pivot_root``, ``unshare``, ``setns``, namespace flags on ``clone``, ``clone3``:
  new namespaces and mounts (a user namespace gives full capabilities inside it);
- ``acct``, ``swapon``/``swapoff``, ``reboot``, clocks, ``quotactl``, ``syslog``,
  ``vhangup``, ``lookup_dcookie``, ``uselib``, ``_sysctl``, ``nfsservctl``, ``iopl``,
  ``ioperm``: host-wide state, obsolete calls, raw port I/O.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Final

__all__ = [
    "CLONE_NAMESPACE_FLAGS",
    "DENIED",
    "ENOSYS_DENIED",
    "bpf_program",
    "docker_profile",
    "syscall_numbers",
]

DENIED: Final = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "mount",
    "umount2",
    "pivot_root",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "clone3",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "lookup_dcookie",
    "quotactl",
    "vhangup",
    "syslog",
    "uselib",
    "_sysctl",
    "nfsservctl",
    "iopl",
    "ioperm",
)
"""Every syscall a sandbox may not make (see the module docstring for why)."""

ENOSYS_DENIED: Final = frozenset(
    {"io_uring_setup", "io_uring_enter", "io_uring_register", "clone3"}
)
"""Denied with ENOSYS ("not implemented": callers fall back); the rest with EPERM."""

CLONE_NAMESPACE_FLAGS: Final = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
"""``clone`` with any of these fails with EPERM (threads and plain forks still work)."""

EPERM, ENOSYS = 1, 38


def _table(text: str) -> dict[str, int]:
    return {name: int(nr) for name, _, nr in (item.partition(":") for item in text.split())}


_NUMBERS: Final[dict[str, dict[str, int]]] = {
    "x86_64": _table(
        "io_uring_setup:425 io_uring_enter:426 io_uring_register:427 bpf:321 "
        "perf_event_open:298 userfaultfd:323 keyctl:250 add_key:248 request_key:249 "
        "kexec_load:246 kexec_file_load:320 init_module:175 finit_module:313 "
        "delete_module:176 mount:165 umount2:166 pivot_root:155 open_tree:428 move_mount:429 "
        "fsopen:430 fsconfig:431 fsmount:432 fspick:433 mount_setattr:442 unshare:272 "
        "setns:308 clone3:435 acct:163 swapon:167 swapoff:168 reboot:169 settimeofday:164 "
        "clock_settime:227 adjtimex:159 clock_adjtime:305 open_by_handle_at:304 "
        "name_to_handle_at:303 lookup_dcookie:212 quotactl:179 vhangup:153 syslog:103 "
        "uselib:134 _sysctl:156 nfsservctl:180 iopl:172 ioperm:173 clone:56"
    ),
    "aarch64": _table(
        "io_uring_setup:425 io_uring_enter:426 io_uring_register:427 bpf:280 "
        "perf_event_open:241 userfaultfd:282 keyctl:219 add_key:217 request_key:218 "
        "kexec_load:104 kexec_file_load:294 init_module:105 finit_module:273 "
        "delete_module:106 mount:40 umount2:39 pivot_root:41 open_tree:428 move_mount:429 "
        "fsopen:430 fsconfig:431 fsmount:432 fspick:433 mount_setattr:442 unshare:97 "
        "setns:268 clone3:435 acct:89 swapon:224 swapoff:225 reboot:142 settimeofday:170 "
        "clock_settime:112 adjtimex:171 clock_adjtime:266 open_by_handle_at:265 "
        "name_to_handle_at:264 lookup_dcookie:18 quotactl:60 vhangup:58 syslog:116 clone:220"
    ),
}
"""Syscall numbers per machine (``uname -m``); a name missing on a machine has no
syscall there (``uselib`` on aarch64)."""

_AUDIT_ARCH: Final = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_DOCKER_ARCHES: Final = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def _errno(name: str) -> int:
    return ENOSYS if name in ENOSYS_DENIED else EPERM


def syscall_numbers(machine: str | None = None) -> dict[str, int]:
    """``{name: number}`` of the denied syscalls on ``machine`` (default: this one);
    empty on a machine the profile does not know."""
    table = _NUMBERS.get(machine or os.uname().machine, {})
    return {name: table[name] for name in DENIED if name in table}


def docker_profile(machine: str | None = None) -> str:
    """The profile as Docker's seccomp JSON (for ``security_opt`` ``seccomp=<json>``):
    default allow, the denied syscalls by name with their errno, ``clone`` with a
    namespace flag EPERM. Architectures: this machine's and its compat ABIs."""
    machine = machine or os.uname().machine
    rules: list[dict[str, Any]] = []
    for code in (EPERM, ENOSYS):
        names = [n for n in DENIED if _errno(n) == code]
        rules.append({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": code})
    for flag in CLONE_NAMESPACE_FLAGS.values():
        rules.append(
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        )
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": _DOCKER_ARCHES.get(machine, []),
        "syscalls": rules,
    }
    return json.dumps(profile, separators=(",", ":"))


def bpf_program(machine: str | None = None) -> bytes | None:
    """The profile as a classic-BPF seccomp program (for ``bwrap --seccomp``), or None
    on a machine the profile does not know.

    A foreign architecture or the x32 ABI kills the process (their numbers differ);
    ``clone`` with a namespace flag fails with EPERM.
    """
    machine = machine or os.uname().machine
    numbers = syscall_numbers(machine)
    if not numbers:
        return None
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    clone_mask = 0
    for flag in CLONE_NAMESPACE_FLAGS.values():
        clone_mask |= flag
    # seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low 32 bits: little-endian)
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, _AUDIT_ARCH[machine]), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, kill)]
    for name, nr in sorted(numbers.items(), key=lambda kv: kv[1]):
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, 0x00050000 | _errno(name))]
    prog += [
        (jeq, 0, 3, _NUMBERS[machine]["clone"]),
        (ld, 0, 0, 16),
        (jset, 0, 1, clone_mask),
        (ret, 0, 0, 0x00050000 | EPERM),
        (ret, 0, 0, allow),
    ]
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)
