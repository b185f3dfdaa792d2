"""``hazmat run``: run tasks with agents in fresh sandboxes and record everything.

Before a run directory is made, :func:`hazmat.preflight.preflight` checks that every
episode can start (API keys, Docker and its image, tasks that need Docker); each
problem is one line and exit 2. Ctrl-C: see :mod:`hazmat.cli.progress`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hazmat.cli.args import check_backend, check_out_dir
from hazmat.cli.root import app, command
from hazmat.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from hazmat.runner import EpisodeResult

__all__ = ["finish", "prepare_local_system", "run"]

SANDBOX_HELP = "auto (docker for tasks that need it, local otherwise), local (bubblewrap) or docker"


@command(app)
def run(
    task_paths: Annotated[
        list[Path] | None, typer.Argument(help="task folders or task.yaml files")
    ] = None,
    agent: Annotated[
        list[str] | None,
        typer.Option(
            "--agent",
            "-a",
            help="solution, null, scripted:FILE or PROVIDER:MODEL (repeat for several)",
        ),
    ] = None,
    sandbox: Annotated[str, typer.Option("--sandbox", "-s", help=SANDBOX_HELP)] = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="runs directory")] = Path("runs"),
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible server URL for openai:NAME")
    ] = None,
    seed: Annotated[int, typer.Option(help="run seed (episode seeds derive from it)")] = 0,
    epochs: Annotated[int, typer.Option(help="episodes per task and agent")] = 1,
    max_parallel: Annotated[
        int | None,
        typer.Option(
            "--max-parallel", "-p", help="episodes at once (default: sized to the machine)"
        ),
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="policy file (default: built-in)")] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="finish this interrupted run")
    ] = None,
    retry_errors: Annotated[
        bool,
        typer.Option(
            "--retry-errors", help="with --resume: also rerun episodes that ended in error"
        ),
    ] = False,
    keep_on_halt: Annotated[
        bool,
        typer.Option(
            "--keep-on-halt", help="keep a halted episode's sandbox paused for inspection"
        ),
    ] = False,
    warm_pool: Annotated[
        int,
        typer.Option("--warm-pool", help="docker: keep up to N sandboxes per spec started ahead"),
    ] = 0,
    build: Annotated[
        bool, typer.Option("--build", help="build the Docker sandbox image if it is missing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
) -> None:
    """Run each task with each agent in a fresh sandbox; record and score every step.

    Exit code 0 when every episode ran (whatever the agent achieved), 1 when an episode
    ended in a harness error, 2 on bad input, 130 when interrupted (finish the run with
    --resume).
    """
    from hazmat.cli.console import err
    from hazmat.cli.progress import RunProgress, run_with_signals
    from hazmat.policy.compose import base_name, task_policies
    from hazmat.runner import default_parallelism, resume_run, run_tasks

    parallel = max_parallel or default_parallelism()
    if parallel < 1:
        raise ConfigError("--max-parallel must be at least 1")
    if retry_errors and resume is None:
        raise ConfigError("--retry-errors goes with --resume RUN")
    if policy is not None and not policy.is_file() and str(policy) != "default":
        raise ConfigError(f"--policy {policy}: no such file")
    policy_for = task_policies(policy)
    con = err()
    progress: RunProgress

    def interrupted(n: int) -> None:
        progress.stop_requested(n)

    if resume is not None:
        from hazmat.record.summary import load_run_record

        if not (resume / "events.jsonl").is_file():
            raise ConfigError(f"--resume {resume}: not a run directory (no events.jsonl)")
        record = load_run_record(resume)
        progress = RunProgress(len(record.episodes) or 1, enabled=con.is_terminal)
        with progress:
            run_dir, results, rerun = run_with_signals(
                lambda c: resume_run(
                    resume,
                    retry_errors=retry_errors,
                    max_parallel=parallel,
                    policy_for=policy_for,
                    on_episode=progress.finished,
                    on_start=progress.started,
                    control=c,
                    on_plan=lambda plan, todo: progress.plan(len(plan), len(todo)),
                ),
                interrupted,
            )
        con.print(f"resumed: ran again {', '.join(rerun)}", highlight=False, soft_wrap=True)
    else:
        from hazmat.agents.models import resolve_agent
        from hazmat.preflight import preflight
        from hazmat.tasks import discover_tasks

        check_backend(sandbox)
        if epochs < 1:
            raise ConfigError("--epochs must be at least 1")
        if not task_paths:
            raise ConfigError("no task paths given", hint="hazmat run tasks/examples --agent ...")
        agents = [resolve_agent(a, base_url=base_url) for a in (agent or ["solution"])]
        tasks = discover_tasks(list(task_paths))
        if not tasks:
            raise ConfigError(f"no task.yaml found under {', '.join(map(str, task_paths))}")
        check_out_dir(out)
        found = preflight(
            tasks,
            agents,
            backend=sandbox,
            base_url=base_url,
            build=build,
            progress=lambda line: con.print(line, markup=False, highlight=False),
        )
        for line in found.warnings:
            con.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
        if not found.ok:
            for line in found.problems[:-1]:
                con.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
            raise ConfigError(found.problems[-1])
        from hazmat.preflight import backend_for

        if any(backend_for(t, sandbox) == "local" for t in tasks):
            prepare_local_system(con)
        progress = RunProgress(len(tasks) * len(agents) * epochs, enabled=con.is_terminal)
        with progress:
            run_dir, results = run_with_signals(
                lambda c: run_tasks(
                    tasks,
                    agents,
                    backend=sandbox,
                    out_dir=out,
                    seed=seed,
                    epochs=epochs,
                    max_parallel=parallel,
                    policy_for=policy_for,
                    on_episode=progress.finished,
                    on_start=progress.started,
                    control=c,
                    keep_on_halt=keep_on_halt,
                    warm_pool=warm_pool,
                    config={
                        "argv": sys.argv[1:],
                        "policy": base_name(policy),
                        "max_parallel": parallel,
                    },
                ),
                interrupted,
            )
    finish(results, run_dir, as_json=as_json)


def finish(results: list[EpisodeResult], run_dir: Path, *, as_json: bool) -> None:
    """Print the table and the record's place; exit 130 when the run was interrupted (with
    the resume command on a line of its own), 1 when an episode ended ``error``."""
    from hazmat.cli.console import err, out
    from hazmat.cli.progress import print_results

    con = err()
    print_results(
        [r for r in results if r.reason != "interrupted"],
        run_dir,
        stream=err() if as_json else out(),
    )
    summary = json.loads((run_dir / "run.json").read_text())
    if as_json:
        print(json.dumps(summary, sort_keys=True))
    else:
        con.print(f"record: {run_dir}", highlight=False, soft_wrap=True)
        _print_seal(str(summary.get("run_id", run_dir.name)))
    if summary.get("status") == "interrupted":
        con.print("interrupted; finish the run with:", highlight=False)
        con.print(f"  hazmat run --resume {run_dir}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(130)
    if any(r.reason == "error" for r in results):
        raise typer.Exit(1)


def _print_seal(run_id: str) -> None:
    """Where and how the run was sealed (the seal log lives outside the run directory)."""
    from hazmat.cli.console import err
    from hazmat.errors import RecordError
    from hazmat.record.seals import latest_seal, seal_log_path

    try:
        entry = latest_seal(run_id)
    except RecordError as exc:
        err().print(f"warning: {exc.one_line()}", highlight=False, soft_wrap=True)
        return
    if entry is None:
        err().print(f"not sealed: no seal in {seal_log_path()}", highlight=False, soft_wrap=True)
        return
    signed = "signed" if entry.sig else "unsigned (hazmat keys init makes a key)"
    err().print(
        f"sealed: {entry.hash} at seq {entry.seq}, {signed}; seal log {seal_log_path()}",
        highlight=False,
        soft_wrap=True,
    )


def prepare_local_system(con: Console) -> None:
    """Make the local sandbox's root file system before the first episode when it is not
    cached yet, with a line that says why the first run waits (and the image build's
    own progress lines when Docker must build it first)."""
    from hazmat.sandbox.local.system import prepare_base

    prepare_base(lambda line: con.print(line, markup=False, highlight=False, soft_wrap=True))
