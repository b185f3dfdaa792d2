"""``hazmat run``: run tasks with agents in fresh sandboxes and record everything.

Ctrl-C once: no new episodes start, running ones finish their current step, every
sandbox is cleaned up and the run is left ``interrupted`` (``--resume`` finishes
it). Ctrl-C twice: running episodes stop at once, still cleaning up.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hazmat.agents.models import resolve_agent
from hazmat.errors import ConfigError
from hazmat.runner import (
    EpisodeResult,
    PlannedEpisode,
    RunControl,
    default_parallelism,
    resume_run,
    run_tasks,
)
from hazmat.tasks import Task, discover_tasks

__all__ = ["RunProgress", "policy_factory", "print_results", "run", "run_with_signals"]

console = Console(stderr=True)
T = TypeVar("T")


def policy_factory(policy_file: Path | None) -> Callable[[Task], Any]:
    """A function giving each task its policy (the task's own overrides on the base)."""
    from hazmat.policy.engine import load_policy

    cache: dict[str, Any] = {}
    if policy_file is not None:
        policy_file = policy_file.resolve()

    def make(task: Task) -> Any:
        ref: Any = task.policy
        if policy_file is not None:
            if isinstance(ref, dict):
                ref = {**ref, "extends": str(policy_file)}
            else:
                ref = str(policy_file)
        key = json.dumps([ref, str(task.root)], sort_keys=True, default=str)
        if key not in cache:
            cache[key] = load_policy(ref, base_dir=task.root)
        return cache[key]

    return make


class RunProgress:
    """A live line: episodes done, running, halted, errors, ETA."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.running = 0
        self.halted = 0
        self.errors = 0
        self.t0 = time.monotonic()
        self.live = (
            Live(self._render(), console=console, transient=True, refresh_per_second=4)
            if enabled
            else None
        )
        self.stopping = False

    def _render(self) -> Text:
        elapsed = time.monotonic() - self.t0
        eta = "?"
        if self.done:
            eta = f"{elapsed / self.done * (self.total - self.done):.0f}s"
        state = (
            " [stopping after the current step; Ctrl-C again to stop now]" if self.stopping else ""
        )
        return Text(
            f"episodes {self.done}/{self.total} done, {self.running} running, "
            f"{self.halted} halted, {self.errors} errors, ETA {eta}{state}"
        )

    def started(self, item: PlannedEpisode) -> None:
        self.running += 1
        self._update()

    def finished(self, r: EpisodeResult) -> None:
        self.running = max(0, self.running - 1)
        if r.reason == "interrupted":
            self._update()
            return
        self.done += 1
        self.halted += r.reason == "halted"
        self.errors += r.reason == "error"
        line = (
            f"[{self.done}/{self.total}] {r.episode_id} {r.task_id} {r.agent}: {r.reason} "
            f"progress {r.progress:.2f}"
        )
        if self.live is not None:
            self.live.console.print(line, highlight=False)
        else:
            console.print(line, highlight=False)
        self._update()

    def _update(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def __enter__(self) -> RunProgress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)


def run_with_signals(
    make: Callable[[RunControl], Awaitable[T]], on_interrupt: Callable[[int], None] | None = None
) -> T:
    """Run a coroutine with SIGINT/SIGTERM wired to a :class:`RunControl`."""
    control = RunControl()

    async def main() -> T:
        loop = asyncio.get_running_loop()

        def handler() -> None:
            control.interrupt()
            if on_interrupt:
                on_interrupt(control.interrupts)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, handler)
        try:
            return await make(control)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def print_results(results: list[EpisodeResult], run_dir: Path, *, stream: Any = None) -> None:
    """Print the per-episode table (task, agent, end reason, progress, depth, steps, time)."""
    table = Table(title=f"run {run_dir.name}", title_justify="left")
    for col in ("episode", "task", "agent", "end", "progress", "depth", "steps", "time"):
        table.add_column(col, justify="right" if col in ("progress", "steps", "time") else "left")
    for r in results:
        why = (r.halt or {}).get("rule") if r.reason == "halted" else r.detail
        end = r.reason + (f" ({why})" if r.reason in ("limit", "error", "halted") and why else "")
        colour = {"halted": "red", "error": "magenta", "limit": "yellow"}.get(r.reason, "")
        table.add_row(
            r.episode_id,
            r.task_id,
            r.agent,
            f"[{colour}]{end}[/]" if colour else end,
            f"{r.progress:.2f}",
            r.depth_id or "-",
            str(r.steps),
            f"{r.duration:.1f}s",
        )
    con = stream or Console()
    if not con.is_terminal:
        con.width = max(con.width, 140)
    con.print(table)


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
    sandbox: Annotated[str, typer.Option("--sandbox", "-s", help="local or docker")] = "local",
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
    as_json: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
) -> None:
    """Run each task with each agent in a fresh sandbox; record and score every step.

    Exit code 0 when every episode ran (whatever the agent achieved), 1 when an
    episode ended in a harness error, 2 on bad input, 130 when interrupted.
    """
    from hazmat.sandbox.base import get_backend

    parallel = max_parallel or default_parallelism()
    if parallel < 1:
        raise ConfigError("--max-parallel must be at least 1")
    if retry_errors and resume is None:
        raise ConfigError("--retry-errors goes with --resume RUN")
    progress: RunProgress

    def interrupted(n: int) -> None:
        progress.stopping = True
        if n >= 2:
            console.print("stopping now; cleaning up sandboxes", highlight=False)

    if resume is not None:
        from hazmat.record.store import RunStore

        if not (resume / "run.json").is_file():
            raise ConfigError(f"{resume}: not a run directory (no run.json)")
        record = RunStore.open(resume).record
        progress = RunProgress(len(record.episodes) or 1, enabled=console.is_terminal)
        with progress:
            run_dir, results, rerun = run_with_signals(
                lambda c: resume_run(
                    resume,
                    retry_errors=retry_errors,
                    max_parallel=parallel,
                    policy_for=policy_factory(policy),
                    on_episode=progress.finished,
                    on_start=progress.started,
                    control=c,
                ),
                interrupted,
            )
        console.print(f"resumed: ran again {', '.join(rerun)}", highlight=False)
    else:
        get_backend(sandbox)
        if epochs < 1:
            raise ConfigError("--epochs must be at least 1")
        if not task_paths:
            raise ConfigError("no task paths given", hint="hazmat run tasks/examples --agent ...")
        agents = [resolve_agent(a, base_url=base_url) for a in (agent or ["solution"])]
        tasks = discover_tasks(list(task_paths))
        if not tasks:
            raise ConfigError(f"no task.yaml found under {', '.join(map(str, task_paths))}")
        progress = RunProgress(len(tasks) * len(agents) * epochs, enabled=console.is_terminal)
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
                    policy_for=policy_factory(policy),
                    on_episode=progress.finished,
                    on_start=progress.started,
                    control=c,
                    keep_on_halt=keep_on_halt,
                    warm_pool=warm_pool,
                    config={
                        "argv": sys.argv[1:],
                        "policy": str(policy.resolve()) if policy else "default",
                        "max_parallel": parallel,
                    },
                ),
                interrupted,
            )
    print_results(
        [r for r in results if r.reason != "interrupted"], run_dir, stream=Console(stderr=as_json)
    )
    summary = json.loads((run_dir / "run.json").read_text())
    if as_json:
        print(json.dumps(summary, sort_keys=True))
    else:
        console.print(f"record: {run_dir}", highlight=False)
    if summary.get("status") == "interrupted":
        console.print(
            f"interrupted: finish it with `hazmat run --resume {run_dir}`", highlight=False
        )
        raise typer.Exit(130)
    if any(r.reason == "error" for r in results):
        raise typer.Exit(1)
