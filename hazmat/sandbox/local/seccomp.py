"""The seccomp filter of local sandboxes (classic BPF, passed to ``bwrap --seccomp``).

The profile is the one every backend uses (:mod:`hazmat.sandbox.seccomp`); this module
renders it for bubblewrap.
"""

from __future__ import annotations

from hazmat.sandbox.seccomp import bpf_program

__all__ = ["seccomp_filter"]


def seccomp_filter() -> bytes | None:
    """The sandbox's classic-BPF seccomp program for ``bwrap --seccomp``, or None on a
    machine the profile does not know (see :func:`hazmat.sandbox.seccomp.bpf_program`)."""
    return bpf_program()
