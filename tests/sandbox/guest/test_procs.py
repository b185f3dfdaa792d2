"""How the supervisor runs the harness's commands (``procs.harness_command``): the pure
part, on this machine's own files (the engine-level attacks are in
``tests/suite/test_root_commands.py``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hazmat.sandbox.guest import procs


def _root() -> bool:
    return os.getuid() == 0


def test_the_environment_is_clean_and_fixed() -> None:
    argv, env = procs.harness_command(
        {
            "argv": ["env"],
            "env": {
                "LD_PRELOAD": "/tmp/evil.so",
                "LD_LIBRARY_PATH": "/tmp",
                "PYTHONPATH": "/home/agent",
                "PYTHONSTARTUP": "/home/agent/x.py",
                "BASH_ENV": "/home/agent/.bashrc",
                "ENV": "/home/agent/.profile",
                "PATH": "/home/agent/bin:/usr/bin",
                "BASH_FUNC_ls%%": "() { evil; }",
                "TASK_SETTING": "kept",
            },
        }
    )
    assert argv[0].endswith("/env") and os.path.isabs(argv[0])
    assert env["TASK_SETTING"] == "kept"
    assert not {"LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONSTARTUP", "BASH_ENV"} & set(
        env
    )
    assert "ENV" not in env and "BASH_FUNC_ls%%" not in env
    assert set(env["PATH"].split(":")) <= set(procs.SAFE_PATH)
    if _root():
        assert env["HOME"] == "/root" and env["USER"] == "root"


def test_python_runs_isolated() -> None:
    argv, _ = procs.harness_command({"argv": ["python3", "-c", "import json"]})
    assert argv[1] == "-I" and argv[2:] == ["-c", "import json"]
    argv, _ = procs.harness_command({"argv": ["sh", "-c", "python3 -c 1"]})
    assert "-I" not in argv  # a shell's own python: the cwd and environment protect it


@pytest.mark.skipif(not _root(), reason="ownership checks need files root owns")
def test_a_program_another_user_can_change_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    program = folder / "tool"
    program.write_text("#!/bin/sh\necho hi\n")
    program.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    folder.chmod(0o777)  # a folder anyone can write: the program could be swapped
    with pytest.raises(PermissionError):
        procs.harness_command({"argv": [str(program)]})
    folder.chmod(0o755)
    program.chmod(0o757)  # the program itself writable by others
    with pytest.raises(PermissionError):
        procs.harness_command({"argv": [str(program)]})
    program.chmod(0o755)
    os.chown(program, 1000, 1000)  # owned by another user
    with pytest.raises(PermissionError):
        procs.harness_command({"argv": [str(program)]})
    os.chown(program, 0, 0)
    assert procs.harness_command({"argv": [str(program)]})[0] == [str(program)]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_a_missing_program_is_not_found() -> None:
    with pytest.raises(FileNotFoundError):
        procs.harness_command({"argv": ["no-such-program-hz"]})
