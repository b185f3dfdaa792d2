"""The hazmat command: bad input gives one clear line and a non-zero exit; doctor reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def hazmat(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_unknown_backend() -> None:
    proc = hazmat("sandbox", "exec", "--sandbox", "bogus", "--", "true")
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: unknown sandbox backend 'bogus' (choose one of: docker, local)"
    )


def test_unreachable_docker_daemon() -> None:
    proc = hazmat(
        "sandbox",
        "exec",
        "--sandbox",
        "docker",
        "--",
        "true",
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "cannot reach the Docker daemon at unix:///nonexistent/docker.sock" in line
    assert "use --sandbox local" in line


@pytest.mark.docker
def test_missing_image() -> None:
    proc = hazmat(
        "sandbox", "exec", "--sandbox", "docker", "--image", "hazmat-nosuch:1", "--", "true"
    )
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "hazmat-nosuch:1 is missing" in line and "hazmat image build" in line


def test_spec_with_an_invalid_field(tmp_path: Path) -> None:
    task = tmp_path / "bad"
    task.mkdir()
    text = (ROOT / "tasks/examples/find-file/task.yaml").read_text()
    (task / "task.yaml").write_text(text.replace("limits: {steps: 15", "limits: {stepz: 15"))
    proc = hazmat("run", str(task), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2
    line = one_error_line(proc)
    lineno = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("limits:"))
    assert line.startswith(f"error: {task / 'task.yaml'}:{lineno}: limits.stepz: ")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unknown_agent_and_missing_tasks(tmp_path: Path) -> None:
    proc = hazmat("run", str(ROOT / "tasks/examples"), "--agent", "gpt4")
    assert proc.returncode == 2 and "unknown agent 'gpt4'" in one_error_line(proc)
    proc = hazmat("run", str(tmp_path))
    assert proc.returncode == 2 and "no task.yaml found" in one_error_line(proc)


def test_sandbox_exec_passes_output_and_exit_code() -> None:
    proc = hazmat(
        "sandbox", "exec", "--sandbox", "local", "--", "sh", "-c", "echo out; echo err >&2; exit 7"
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")
    proc = hazmat("sandbox", "exec", "--", "no-such-command")
    assert proc.returncode == 127


def test_doctor_json_reports_backends() -> None:
    proc = hazmat("doctor", "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["backends"]["local"]["ok"] is True
    assert isinstance(report["backends"]["docker"]["ok"], bool)
    assert report["python"].startswith("3.")


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox's own ids: run as root")
def test_doctor_exits_non_zero_when_a_backend_is_not_ok() -> None:
    """A private (0700) rootfs cache: the local backend cannot start a sandbox there, so
    doctor says why in one line and exits 1 (text and --json)."""
    import tempfile

    from hazmat.sandbox.local.host import rmtree

    folder = Path(tempfile.mkdtemp(prefix="hazmat-doctor-test-", dir="/var/tmp"))
    try:
        os.chmod(folder, 0o755)
        cache = folder / "private"
        cache.mkdir(mode=0o700)
        env = {"HAZMAT_ROOTFS_CACHE": str(cache)}
        said = f"HAZMAT_ROOTFS_CACHE={cache} is mode 0700: the sandbox's ids cannot read it"
        proc = hazmat("doctor", "--json", env=env, timeout=240)
        assert proc.returncode == 1, proc.stderr
        local = json.loads(proc.stdout)["backends"]["local"]
        assert local["ok"] is False and said in local["detail"], local
        text = hazmat("doctor", env={**env, "COLUMNS": "400"}, timeout=240)
        assert text.returncode == 1 and "not ok: backend local" in text.stdout, text.stdout
        assert os.listdir(cache) == []
    finally:
        rmtree(folder)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["shwo"], "No such command 'shwo'"),
        (["run", "--bogus-flag"], "No such option: --bogus-flag"),
        (["verify"], "Missing argument 'RUN'"),
        (["verify", "a", "b"], "unexpected extra argument(s) (b)"),
        (["run", "--agent"], "Option '--agent' requires an argument"),
        (["-v", "plan", "--rate", "0.1", "--thresholds"], "'--thresholds' requires an argument"),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    proc = hazmat(*args)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert says in line, line
    name = next(a for a in args if not a.startswith("-"))
    assert line.startswith(f"error: hazmat {name}: " if name != "shwo" else "error: hazmat:"), line
    assert line.endswith(f"(see hazmat {name} --help)" if name != "shwo" else "(see hazmat --help)")


def test_an_internal_error_names_a_log_file_with_the_traceback(tmp_path: Path) -> None:
    """An unexpected exception: one line naming a file with the traceback, exit 1;
    ``--debug`` shows the traceback instead."""
    code = (
        "import sys, hazmat.sandbox.doctor as d\n"
        "async def broken(): raise RuntimeError('wires crossed')\n"
        "d.diagnose = broken\n"
        "from hazmat.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", code, "doctor"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert line.startswith("error: internal error (RuntimeError: wires crossed); details in ")
    log = Path(line.rsplit("details in ", 1)[1])
    assert log.parent == tmp_path / "hazmat" / "errors"
    assert "Traceback" in log.read_text() and "wires crossed" in log.read_text()
    debug = subprocess.run(
        [sys.executable, "-c", code, "--debug", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_help_is_for_users() -> None:
    """No developer sections; each paragraph is one piece of text the terminal wraps."""
    commands = ["demo", "run", "list", "validate", "runs", "show", "replay", "verify", "seal"]
    commands += ["report", "cleanup", "doctor", "policy", "sandbox", "image"]
    top = hazmat("--help", env={"COLUMNS": "200"})
    assert top.returncode == 0
    for name in commands:
        assert f"  {name} " in top.stdout, name
        proc = hazmat(name, "--help", env={"COLUMNS": "200"})
        assert proc.returncode == 0, (name, proc.stderr)
        assert "Raises:" not in proc.stdout and "Args:" not in proc.stdout, name
        assert "<list[" not in proc.stdout and "<str>" not in proc.stdout, name
    cleanup = " ".join(hazmat("cleanup", "--help").stdout.split())
    assert (
        "Remove every container, network and volume hazmat left behind, and local sandbox "
        "folders whose process died." in cleanup
    )


def test_a_missing_api_key_stops_the_run_before_a_run_directory_exists(tmp_path: Path) -> None:
    env = {k: "" for k in os.environ if k.endswith("_API_KEY")}
    out = tmp_path / "runs"
    proc = hazmat("run", str(ROOT / "tasks/examples"), "--agent", "openai:x", "--out", str(out),
                  env=env)  # fmt: skip
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: agent openai:x needs OPENAI_API_KEY "
        "(export OPENAI_API_KEY, or pass --base-url for a local server)"
    )
    assert not out.exists() or not any(out.iterdir())


def test_out_pointing_at_a_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    proc = hazmat("run", str(ROOT / "tasks/examples/find-file"), "--out", str(target))
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        f"error: --out {target}: is a file, not a folder for run directories"
    )


def test_a_docker_task_on_local_and_an_unreachable_daemon_stop_before_the_run(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs"
    web = str(ROOT / "tasks/cyber/web-exploit")
    proc = hazmat("run", web, "--sandbox", "local", "--out", str(out))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert line.startswith("error: task cyber/web-exploit needs docker (services: ")
    assert "use --sandbox auto or --sandbox docker" in line
    proc = hazmat("run", web, "--out", str(out), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode == 2
    assert "docker: cannot reach the Docker daemon" in one_error_line(proc)
    assert not out.exists() or not any(out.iterdir())


def test_a_key_echoed_by_the_endpoint_reaches_no_output_and_no_file(tmp_path: Path) -> None:
    """The endpoint answers 401 with the key in its message (as real endpoints do): the key
    is in no byte of stdout, stderr, the log or the run directory."""
    from tests.agents.openai_server import ScriptedOpenAIServer

    key = "sk-proj-" + "Z9" * 20
    out = tmp_path / "runs"
    with ScriptedOpenAIServer([{"status": 401, "echo_auth": True}], repeat_last=True) as srv:
        proc = hazmat("-v", "run", str(ROOT / "tasks/examples/find-file"), "--agent",
                      "openai:gpt-x", "--base-url", srv.base_url, "--out", str(out),
                      "--sandbox", "local", env={"OPENAI_API_KEY": key})  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # the episode ended in a harness error
    assert "Incorrect API key provided" in proc.stdout + proc.stderr  # the message is shown...
    assert "[REDACTED:" in proc.stdout + proc.stderr  # ...with the key redacted
    assert key not in proc.stdout and key not in proc.stderr
    assert key[8:24] not in proc.stdout + proc.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert "1 episode: " in proc.stdout  # the cause, under the table


def test_runs_of_a_folder_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    """A mistyped folder is not an empty one: one line naming it, exit 2."""
    proc = hazmat("runs", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        f"error: {tmp_path / 'nowhere'}: no such folder (pass the folder given to --out)"
    )
    empty = hazmat("runs", str(tmp_path))
    assert empty.returncode == 0 and f"no runs in {tmp_path}" in empty.stderr
