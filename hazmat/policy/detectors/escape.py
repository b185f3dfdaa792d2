"""Container escape: runtime sockets, host PID 1, cgroup/kernel hooks, host mounts, modules.

Two tiers. :func:`detect` (halt by default) fires on moves that only make sense to reach
the host from inside a container: runtime sockets spoken to directly, ``nsenter`` into
PID 1, ``/proc/1/root``, ``release_agent``/``core_pattern``/``uevent_helper`` hooks,
cgroup mounts, raw memory and block devices, host-root bind mounts, kernel modules from
writable paths. :func:`detect_risky` (block by default) fires on host-admin moves that
are everyday on a workstation but escape-capable in a sandbox: ``mount``, ``modprobe``,
``unshare``, ``docker run --privileged``/``-v docker.sock``, ``ctr``/``crictl``/``runc``.
"""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, flags, gated, positional, search

_STRONG = gated(
    re.compile(
        r"(?i)--unix-socket\s+\S*(?:docker|containerd|crio|podman|kubelet)\.sock\b|"
        r"unix-connect:\S*(?:docker|containerd|crio|podman)\.sock|"
        r"unix:///\S*(?:containerd|crio|kubelet)\.sock|/run/containerd/containerd\.sock|"
        r"(?:>|\btee\b[^\n|;]*)\s*\S*(?:release_agent|notify_on_release|/proc/sys/kernel/"
        r"(?:core_pattern|modprobe|hotplug)|/sys/kernel/uevent_helper|/proc/sysrq-trigger)\b|"
        r"/proc/1/(?:root|cwd|map_files|mem)\b|/proc/1/ns/\w+\b[^\n]*(?:nsenter|setns)|"
        r"/dev/(?:kmem|mem|port)\b|/proc/kcore|/proc/self/exe\b[^\n]*>|>\s*/proc/self/exe|"
        r"#!/proc/self/exe|"
        r"(?:-v|--volume)[= ]['\"]?/:/|"
        r"--mount\b[^\n]*(?:source|src)=/(?:,|\s|$)|\bdeepce\b|\bcdk\s+(?:run|evaluate|auto-escape)|"
        r"\bchroot\s+/(?:host|hostfs|rootfs|proc/1/root)\b|security\.privileged\s*=?\s*true|"
        r"\bdisk\s+source=/\s|\bsysctl\s+-w\s+kernel\.(?:core_pattern|modprobe)|"
        r"\bkubectl\s+debug\s+node/|\bsystemd-nspawn\b[^\n]*(?:-D|--directory)[= ]/(?:\s|$)"
    )
)
_RISKY = gated(
    re.compile(
        r"(?i)(?:docker|containerd|crio|cri-dockerd|podman|dockershim|kubelet)\.sock\b|"
        r"--privileged\b|--pid[= ]host\b|--ipc[= ]host\b|--uts[= ]host\b|--userns[= ]host\b|"
        r"--cap-add[= ](?:all|sys_admin|sys_module|sys_ptrace|dac_read_search|sys_rawio|"
        r"net_admin)\b|--security-opt[= ](?:apparmor|seccomp|label)[=:](?:unconfined|disable)|"
        r"\"host(?:PID|Network|IPC)\"\s*:\s*true|\"privileged\"\s*:\s*true|\bhostPath\b|"
        r"\bkeyctl\s+(?:read|print|pipe)|\bbpftool\b|/sys/kernel/security|"
        r"(?:-v|--volume)[= ]['\"]?/(?:var/run|run|var/lib|proc|sys|dev|etc|root|boot|home)"
        r"[^\s]*:/|"
        r"/var/lib/docker/overlay2/[^\s]*/(?:merged|diff)|/sys/fs/cgroup/[^\s]*cgroup\.procs|"
        r"/proc/1/ns\b|\bchroot\s+/mnt\b|\brelease_agent\b"
    )
)
_WRITABLE = re.compile(r"^(?:/tmp/|/dev/shm/|/var/tmp/|\./|[^/])")


def detect(f: Facts) -> str | None:
    """Moves that only make sense to reach the host from inside a container."""
    for c in f.commands:
        name, args = c.name, c.args
        fl = flags(args)
        pos = positional(args)
        if name == "nsenter" and (re.search(r"(?:-t\s*|--target[= ]?)1\b|/proc/1/", c.line)):
            return f"enters the host's namespaces: {c.line[:80]}"
        if name in ("insmod", "modprobe") and any(
            p.endswith(".ko") and p.startswith(("/tmp/", "/dev/shm/", "/var/tmp/")) for p in pos
        ):
            return f"loads a kernel module from a writable path: {c.line[:80]}"
        if name == "mount" and re.search(
            r"-t\s*(?:cgroup2?|debugfs|securityfs|configfs)\b|\bcgroup2?\b", c.line
        ):
            return f"mounts a cgroup or kernel file system: {c.line[:80]}"
        if name == "debugfs" and any(p.startswith("/dev/") for p in pos):
            return f"debugfs on a device: {c.line[:80]}"
        if name == "mknod" and any(a == "b" for a in args):
            return f"creates a block device node: {c.line[:80]}"
        if name in ("gdb", "strace") and re.search(r"(?:-p|--pid)[= ]?1\b", c.line):
            return "attaches to PID 1"
        if name == "capsh" and any(a.startswith(("--uid", "--gid", "--chroot")) for a in args):
            return f"capsh: {c.line[:80]}"
        if (
            name in ("docker", "podman")
            and pos[:1] in (["run"], ["create"])
            and re.search(r"(?:-v|--volume)[= ]/:", c.line)
        ):
            return f"container with the host root mounted: {c.line[:100]}"
        _ = fl
    hit = search(_STRONG, f.blob)
    if hit:
        return f"container escape: {hit}"
    return None


def detect_risky(f: Facts) -> str | None:
    """Host-admin moves that can reach the host from a sandbox (everyday on a workstation)."""
    for c in f.commands:
        name, args = c.name, c.args
        fl = flags(args)
        pos = positional(args)
        if name == "nsenter":
            return f"enters other namespaces: {c.line[:80]}"
        if name == "unshare" and not (fl & {"-h", "--help"}):
            return f"makes new namespaces: {c.line[:80]}"
        if name in ("insmod", "rmmod", "kmod") or (
            name == "modprobe" and pos and not fl & {"-l", "-c", "-n", "--dry-run", "-h", "-r"}
        ):
            return f"loads/unloads a kernel module: {c.line[:80]}"
        if name == "mount" and pos and not (fl & {"-l", "--list", "-h", "--help"}):
            return f"mounts a file system: {c.line[:80]}"
        if name in ("ctr", "crictl", "runc", "nerdctl", "lxc-attach", "kubelet"):
            return f"{name}: {c.line[:80]}"
        if name == "chroot" and pos:
            return f"chroot: {c.line[:80]}"
    hit = search(_RISKY, f.blob)
    if hit:
        return f"container escape risk: {hit}"
    return None
