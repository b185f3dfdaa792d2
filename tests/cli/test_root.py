"""The root of the hazmat command: which commands a command line builds, and what every
command costs before it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hazmat.cli.root import click_command


def _names(cmd: Any) -> set[str]:
    return set(cmd.commands)


def _shape(cmd: Any) -> Any:
    """What a person can type and read of a command: its options, arguments, help and
    sub-commands, recursively."""
    params = [
        (p.name, tuple(getattr(p, "opts", ())), getattr(p, "help", None), p.metavar)
        for p in cmd.params
    ]
    subs = {name: _shape(sub) for name, sub in getattr(cmd, "commands", {}).items()}
    return (cmd.name, cmd.help, cmd.short_help, params, subs)


ALL = _names(click_command())


@pytest.mark.parametrize(
    ("args", "built"),
    [
        (["runs", "somewhere"], {"runs"}),
        (["-v", "--debug", "verify", "a-run"], {"verify"}),
        (["-vv", "sandbox", "exec", "--", "true"], {"sandbox"}),
        (["policy", "lint", "default"], {"policy"}),
        (["--", "runs", "x"], {"runs"}),
    ],
)
def test_a_command_line_builds_only_the_command_it_names(args: list[str], built: set[str]) -> None:
    assert _names(click_command(args)) == built


@pytest.mark.parametrize(
    "args", [[], ["--help"], ["-v"], ["shwo"], ["--"], ["--debug", "--help"], ["--help", "runs"]]
)
def test_no_command_or_an_unknown_one_builds_them_all(args: list[str]) -> None:
    assert _names(click_command(args)) == ALL
    assert {"demo", "run", "runs", "verify", "sandbox", "policy"} <= ALL


def test_a_command_built_alone_is_the_command_built_with_the_others() -> None:
    """Building one command changes nothing of it: same options, arguments, help and
    sub-commands as in the whole tree (and the root's own options stay)."""
    whole = click_command()
    for name in sorted(ALL):
        alone = click_command([name])
        assert _shape(alone.commands[name]) == _shape(whole.commands[name]), name
        assert [p.name for p in alone.params] == [p.name for p in whole.params]


@pytest.mark.parametrize(("given", "kept"), [(None, "__all__"), ("", ""), ("x", "x")])
def test_pydantic_plugins_are_not_looked_for_unless_the_user_says(
    tmp_path: Path, given: str | None, kept: str
) -> None:
    """Looking for plugins reads every installed distribution's entry points: the hazmat
    command skips it, unless the user set PYDANTIC_DISABLE_PLUGINS themselves."""
    seen = tmp_path / "seen"
    code = (
        "import os, sys\n"
        "from hazmat.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "finally:\n"
        f"    open({str(seen)!r}, 'w').write(os.environ.get('PYDANTIC_DISABLE_PLUGINS', '-'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if given is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = given
    proc = subprocess.run(
        [sys.executable, "-c", code, "runs", "--json", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
    assert seen.read_text() == kept


def _hazmat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip


@pytest.mark.parametrize("args", [[], ["sandbox"], ["policy"]])
def test_a_command_line_that_names_no_command_prints_the_help(args: list[str]) -> None:
    """``hazmat`` alone (or a group alone): the help as ``--help`` prints it, on several
    lines, and exit 2 (nothing was done), never the help folded into an error line."""
    proc = _hazmat(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == _hazmat(*args, "--help").stdout
    assert proc.stdout.count("\n") > 5


def test_options_keep_their_own_placeholders() -> None:
    """A metavar a command sets (``--older-than DAYS``) survives the tidying of names."""
    text = _hazmat("cleanup", "--help").stdout
    assert "--older-than DAYS" in text, text
    assert "--run RUN" in text, text
