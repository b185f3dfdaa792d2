"""Programs that run INSIDE a sandbox (or in its network namespace), standard library
only, python 3.8+: ``supervisor.py`` (the channel every command goes through: ``serve.py``, with
``procs.py``, ``monitor.py`` and ``wire.py``) and ``sentinel.py`` (the network watch:
``watch.py``, with ``netkeep.py``, ``netparse.py``, ``netsys.py`` and ``wire.py``).

The host does not import them to use them: the local backend binds this folder into
the sandbox (``/.hazmat/guest``), the Docker image copies the programs to
``/opt/hazmat`` (they are its build context and content hash, with the Dockerfile),
and a supervisor in a task's service container is started from their sources
(:func:`inline_command`). A program finds its sibling modules beside itself.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "GUEST_DIR",
    "PROGRAMS",
    "SENTINEL_PATH",
    "SUPERVISOR_PATH",
    "inline_command",
    "program_files",
]

GUEST_DIR = Path(__file__).resolve().parent
SUPERVISOR_PATH = GUEST_DIR / "supervisor.py"
"""The supervisor program, copied or bound into every sandbox."""
SENTINEL_PATH = GUEST_DIR / "sentinel.py"
"""The sentinel program, run next to every sandbox."""
PROGRAMS = (
    "supervisor.py",
    "serve.py",
    "procs.py",
    "monitor.py",
    "wire.py",
    "sentinel.py",
    "watch.py",
    "netkeep.py",
    "netparse.py",
    "netsys.py",
)
"""Every file of the guest programs."""

_BOOT = (
    "import sys, types\n"
    "for name, text in zip(sys.argv[1::2], sys.argv[2::2]):\n"
    "    module = types.ModuleType(name)\n"
    "    sys.modules[name] = module\n"
    "    exec(compile(text, name + '.py', 'exec'), module.__dict__)\n"
    "sys.modules[sys.argv[-2]].main()\n"
)


def program_files() -> dict[str, bytes]:
    """The guest programs' files by name (the Docker build context's share)."""
    return {name: (GUEST_DIR / name).read_bytes() for name in PROGRAMS}


def inline_command(*modules: str) -> list[str]:
    """``-c BOOT NAME SOURCE ...``: python arguments that run the program whose modules
    are ``modules`` (dependencies first, the program last, e.g. ``"procs", "monitor",
    "supervisor"``) from their sources, without files in the sandbox; the last one's
    ``main()`` is called."""
    args = ["-c", _BOOT]
    for name in modules:
        args += [name, (GUEST_DIR / f"{name}.py").read_text()]
    return args
