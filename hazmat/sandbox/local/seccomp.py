"""The seccomp filter of local sandboxes (classic BPF, passed to ``bwrap --seccomp``).

It denies what Docker's default profile denies and no agent task needs; see
:func:`seccomp_filter`.
"""

from __future__ import annotations

import os
import struct

__all__ = ["seccomp_filter"]


# Syscalls no agent task needs and that widen the kernel's attack surface (the list
# follows Docker's default seccomp profile): io_uring, bpf, perf, userfaultfd, keys,
# modules, kexec, mounts and namespaces, clocks, swap, reboot, handle-based opens.
def _table(text: str) -> dict[str, int]:
    return {name: int(nr) for name, _, nr in (item.partition(":") for item in text.split())}


_DENY_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": _table(
        "io_uring_setup:425 io_uring_enter:426 io_uring_register:427 bpf:321 "
        "perf_event_open:298 userfaultfd:323 keyctl:250 add_key:248 request_key:249 "
        "kexec_load:246 kexec_file_load:320 init_module:175 finit_module:313 "
        "delete_module:176 mount:165 umount2:166 pivot_root:155 open_tree:428 move_mount:429 "
        "fsopen:430 fsconfig:431 fsmount:432 fspick:433 mount_setattr:442 unshare:272 "
        "setns:308 acct:163 swapon:167 swapoff:168 reboot:169 settimeofday:164 "
        "clock_settime:227 adjtimex:159 clock_adjtime:305 open_by_handle_at:304 "
        "name_to_handle_at:303 lookup_dcookie:212 quotactl:179 vhangup:153 syslog:103 "
        "uselib:134 _sysctl:156 nfsservctl:180 iopl:172 ioperm:173 "
    ),
    "aarch64": _table(
        "io_uring_setup:425 io_uring_enter:426 io_uring_register:427 bpf:280 "
        "perf_event_open:241 userfaultfd:282 keyctl:219 add_key:217 request_key:218 "
        "kexec_load:104 kexec_file_load:294 init_module:105 finit_module:273 "
        "delete_module:106 mount:40 umount2:39 pivot_root:41 open_tree:428 move_mount:429 "
        "fsopen:430 fsconfig:431 fsmount:432 fspick:433 mount_setattr:442 unshare:97 "
        "setns:268 acct:89 swapon:224 swapoff:225 reboot:142 settimeofday:170 "
        "clock_settime:112 adjtimex:171 clock_adjtime:266 open_by_handle_at:265 "
        "name_to_handle_at:264 lookup_dcookie:18 quotactl:60 vhangup:58 syslog:116 "
    ),
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def seccomp_filter() -> bytes | None:
    """A classic-BPF seccomp program for bwrap --seccomp, or None on other machines.

    Denied syscalls fail with EPERM (io_uring with ENOSYS, so programs fall back);
    a foreign architecture or the x32 ABI kills the process.
    """
    machine = os.uname().machine
    deny = _DENY_SYSCALLS.get(machine)
    if deny is None:
        return None
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000

    def errno(code: int) -> int:
        return 0x00050000 | code

    prog = [(ld, 0, 0, 4), (jeq, 1, 0, _AUDIT_ARCH[machine]), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, kill)]
    for name, nr in sorted(deny.items(), key=lambda kv: kv[1]):
        code = 38 if name.startswith("io_uring") else 1  # ENOSYS / EPERM
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, errno(code))]
    prog.append((ret, 0, 0, allow))
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)
