"""Task environments (``sandbox.build``): one hash per recipe, built offline, the same on
both backends (a Docker image; its root file system for the local backend).

Issue 15, failure 4: a task could not choose the agent's tools (``sandbox.build: unknown
field``; no ``xxd``, ``unzip``, ``gcc``, pycryptodome in the image), and the local
backend showed the host's ``/usr``, so the same task saw different tools on each backend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hazmat.errors import SpecError
from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.rootfs import base_source, cached_rootfs
from hazmat.tasks import load_task
from hazmat.tasks.environment import EnvironmentBuild, environment_of
from hazmat.validate import validate_tasks

from .helpers import write_task

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]

TASK = """\
id: t/env
title: tools of its own
category: examples
instructions: Use xxd.
sandbox:
  build: BUILD
tools: [bash, submit]
milestones:
  - id: tools
    check: {output: {contains: "ok-tools"}}
  - id: flag
    check: {submission: "{{flag}}"}
solution:
  - {tool: bash, command: "CHECK && echo ok-tools"}
  - {tool: submit, answer: "{{flag}}"}
"""


def test_environment_hash_names_the_recipe() -> None:
    a = environment_of(
        EnvironmentBuild(apt=["xxd", "binutils"], pip=["pycryptodome"]), sandbox_hash="s1"
    )
    b = environment_of(
        EnvironmentBuild(apt=["binutils", "xxd"], pip=["pycryptodome"]), sandbox_hash="s1"
    )
    c = environment_of(EnvironmentBuild(apt=["binutils"], pip=["pycryptodome"]), sandbox_hash="s1")
    d = environment_of(
        EnvironmentBuild(apt=["xxd", "binutils"], pip=["pycryptodome"]), sandbox_hash="s2"
    )
    assert a.hash == b.hash and a.tag == f"hazmat-env:{a.hash}"
    assert len({a.hash, c.hash, d.hash}) == 3
    assert a.recipe == {"apt": ["binutils", "xxd"], "pip": ["pycryptodome"]}
    assert b"FROM hazmat-sandbox:s1" in a.files["Dockerfile"]


def test_build_is_a_known_field_and_checked(tmp_path: Path) -> None:
    task = load_task(write_task(tmp_path / "a", TASK.replace("BUILD", "{apt: [xxd]}")))
    assert task.sandbox.build is not None and not task.needs_docker  # runs on both backends
    with pytest.raises(
        SpecError,
        match=r"task.yaml:6: sandbox.build.apt: .xxd; rm -rf /. \(item 0\) is not a Debian package",
    ):
        load_task(write_task(tmp_path / "b", TASK.replace("BUILD", "{apt: ['xxd; rm -rf /']}")))
    bad = write_task(
        tmp_path / "c",
        TASK.replace("BUILD", "{dockerfile: env/Dockerfile}"),
        {"env/Dockerfile": "FROM python:3.11\n"},
    )
    with pytest.raises(
        SpecError, match=r"sandbox.build.dockerfile: Dockerfile must build FROM \$\{SANDBOX\}"
    ):
        load_task(bad)


@pytest.mark.docker
@pytest.mark.local
@pytest.mark.parametrize("sandbox", ["auto", "docker"])
async def test_environments_build_and_the_record_names_them(tmp_path: Path, sandbox: str) -> None:
    """``auto`` runs them on local (on the environment's root file system), ``docker`` on
    Docker; both see the task's tools (``tree`` is not on this host) and record the hash."""
    packages = load_task(
        write_task(
            tmp_path / "pkgs",
            TASK.replace("BUILD", "{apt: [xxd, binutils, tree], pip: [pycryptodome]}").replace(
                "CHECK", "command -v xxd strings tree && python3 -c 'import Crypto'"
            ),
        )
    )
    docker = load_task(
        write_task(
            tmp_path / "file",
            TASK.replace("t/env", "t/envfile")
            .replace("BUILD", "{dockerfile: env/Dockerfile}")
            .replace("CHECK", "cat /opt/marker | grep -q built-here"),
            {
                "env/Dockerfile": "ARG SANDBOX\nFROM ${SANDBOX}\nUSER root\n"
                "COPY marker /opt/marker\nUSER agent\n",
                "env/marker": "built-here\n",
            },
        )
    )
    run_dir, verdicts = await validate_tasks(
        [packages, docker], sandbox=sandbox, out_dir=tmp_path / "runs", jobs=2
    )
    backend = "local" if sandbox == "auto" else "docker"
    assert [(v.task_id, v.backend, v.ok) for v in verdicts] == [
        ("t/env", backend, True),
        ("t/envfile", backend, True),
    ], [v.problems for v in verdicts]
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    ready = [e for e in events if e["event"] == "sandbox_ready"]
    assert len(ready) == 4
    want = {environment_of(t.sandbox.build).hash for t in (packages, docker) if t.sandbox.build}
    assert {e["environment"] for e in ready} == want
    assert {e["info"]["env"] for e in ready} == want and {e["backend"] for e in ready} == {backend}
    assert {e["spec"]["image"] for e in ready} == {f"hazmat-env:{h}" for h in want}


@pytest.mark.docker
@pytest.mark.local
async def test_a_task_environment_answers_the_same_on_both_backends(tmp_path: Path) -> None:
    """The environment's tools on local come from its root file system (``tree`` is not on
    this host), and the same commands print the same on both backends."""
    from hazmat.sandbox import create_sandbox
    from hazmat.tasks.environment import ensure_environment

    assert shutil.which("tree") is None, "pick a package this host lacks"
    env = environment_of(EnvironmentBuild(apt=["xxd", "binutils", "tree"], pip=["pycryptodome"]))
    commands = [
        "command -v xxd strings tree",
        "tree --version",
        "python3 -c 'import Crypto, sys; print(Crypto.__version__, sys.version)'",
        "cat /etc/debian_version",
        "ls /usr/bin /usr/local/lib/python3.11/dist-packages | sha256sum",
    ]
    outputs: dict[str, list[str]] = {}
    for backend in ("local", "docker"):
        made = await ensure_environment(env, backend=backend)
        assert made == (env.tag if backend == "docker" else str(cached_rootfs(env.hash)))
        spec = SandboxSpec(image=env.tag)
        async with create_sandbox(backend, spec) as sb:
            assert sb.environment == env.hash
            outputs[backend] = []
            for command in commands:
                r = await sb.exec(["/bin/bash", "-c", command])
                assert r.ok, (backend, command, r.stderr_text)
                outputs[backend].append(r.stdout_text)
    assert outputs["local"] == outputs["docker"]
    assert outputs["local"][0].split() == ["/usr/bin/xxd", "/usr/bin/strings", "/usr/bin/tree"]


@pytest.mark.docker
def test_doctor_names_a_tasks_environment(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hazmat.cli import app

    folder = write_task(
        tmp_path / "t", TASK.replace("BUILD", "{apt: [xxd, binutils, tree], pip: [pycryptodome]}")
    )
    task = load_task(folder)
    assert task.sandbox.build is not None
    env = environment_of(task.sandbox.build)
    result = CliRunner().invoke(app, ["doctor", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [entry] = report["environments"]
    assert (entry["hash"], entry["tag"], entry["tasks"]) == (env.hash, env.tag, ["t/env"])
    assert entry["built"] is True  # built by the test above (the same recipe, one hash)
    assert entry["rootfs"] is True  # made by the local runs above
    base = report["environment"]
    assert (base["hash"], base["local"]) == (base_source().hash, base_source().hash)
    assert base["cached"] is True and base["rootfs"] == str(cached_rootfs(base["hash"]))
    plain = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "300"})
    assert f"environment {base['hash']}  local root file system cached" in plain.output
