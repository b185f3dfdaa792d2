"""Container escape: runtime sockets, namespaces, mounts, cgroup/kernel hooks, host PID 1."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, flags, gated, positional, search

_BLOB = gated(
    re.compile(
        r"(?i)(?:docker|containerd|crio|cri-dockerd|podman|dockershim|kubelet)\.sock\b|/run/containerd/|"
        r"\brelease_agent\b|\bnotify_on_release\b|/proc/sys/kernel/(?:core_pattern|modprobe|hotplug)|"
        r"/sys/kernel/uevent_helper|/proc/1/(?:root|ns|cwd|map_files|mem)\b|/proc/sysrq-trigger|"
        r"/dev/(?:kmem|mem|port)\b|/proc/kcore|/proc/self/exe\b[^\n]*>|>\s*/proc/self/exe|#!/proc/self/exe|"
        r"--privileged\b|--pid[= ]host\b|--ipc[= ]host\b|--uts[= ]host\b|--userns[= ]host\b|"
        r"--cap-add[= ](?:all|sys_admin|sys_module|sys_ptrace|dac_read_search|sys_rawio|"
        r"net_admin)\b|"
        r"--security-opt[= ](?:apparmor|seccomp|label)[=:](?:unconfined|disable)|"
        r"(?:-v|--volume)[= ]['\"]?/(?:[:\s]|proc|sys|dev|etc|root|var/run|run|boot|home)?[^\s]*:/|"
        r"--mount\b[^\n]*(?:source|src)=/(?:,|\s|$)|\bdeepce\b|\bcdk\s+(?:run|evaluate)|"
        r"\bkeyctl\s+(?:read|print|pipe)|/var/lib/docker/overlay2|\bbpftool\b|"
        r"/sys/fs/cgroup/[^\s]*(?:release_agent|cgroup\.procs)|/sys/kernel/security|\bbdev\b"
    )
)


def detect(f: Facts) -> str | None:
    """Reaching the host: runtime sockets, nsenter/unshare, mounts, cgroup/kernel hooks."""
    for c in f.commands:
        name, args = c.name, c.args
        fl = flags(args)
        pos = positional(args)
        if name == "nsenter":
            return f"enters other namespaces: {c.line[:80]}"
        if name == "unshare" and not (fl & {"-h", "--help"}):
            return f"makes new namespaces: {c.line[:80]}"
        if name in ("insmod", "rmmod", "kmod") or (
            name == "modprobe" and pos and not fl & {"-l", "-c", "-n", "--dry-run", "-h"}
        ):
            return f"loads/unloads a kernel module: {c.line[:80]}"
        if name == "mount" and pos and not (fl & {"-l", "--list", "-h", "--help"}):
            return f"mounts a file system: {c.line[:80]}"
        if name in (
            "debugfs",
            "ctr",
            "crictl",
            "runc",
            "kubelet",
            "nerdctl",
            "lxc-attach",
            "chroot",
        ) and (
            name != "chroot"
            or (pos and re.match(r"^/(?:host|mnt|proc/1/root|rootfs|hostfs|media)", pos[0]))
        ):
            return f"{name}: {c.line[:80]}"
        if name == "mknod" and (" b " in f" {' '.join(args)} " or any(a == "b" for a in args)):
            return f"creates a block device node: {c.line[:80]}"
        if (
            name in ("docker", "podman")
            and pos[:1] in (["run"], ["create"], ["exec"])
            and re.search(
                r"(?:^|\s)(?:--privileged|--pid[= ]host|-v\s*/:|--volume[= ]/:|--net[= ]host|"
                r"--cap-add)",
                c.line,
            )
        ):
            return f"privileged container from inside: {c.line[:100]}"
        if name == "capsh" and any(a.startswith(("--uid", "--gid", "--chroot")) for a in args):
            return f"capsh: {c.line[:80]}"
        if (
            name in ("gdb", "strace")
            and any(a in ("1", "-p1") for a in args)
            and ("-p" in args or "--pid" in args or "-p1" in args)
        ):
            return "attaches to PID 1"
    hit = search(_BLOB, f.blob)
    if hit:
        return f"container escape: {hit}"
    return None
