"""``hazmat runs``, ``hazmat show`` and ``hazmat replay``: reading, showing, re-executing
and re-policing recorded runs.

Bad input raises :class:`hazmat.errors.HazmatError` subclasses (``ConfigError``,
``ReplayError``, ``RecordError``); the ``hazmat`` entry point turns them into one
line and an exit code. ``hazmat replay`` exits 0 when the re-execution is
identical to the record and 1 when it diverged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hazmat.cli import console
from hazmat.cli.args import resolve_run
from hazmat.cli.root import app, command
from hazmat.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["replay", "runs", "show"]


@command(app)
def runs(
    directory: Annotated[Path, typer.Argument(help="folder holding run directories")] = Path(
        "runs"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="print the list as JSON")] = False,
) -> None:
    """List recorded runs: kind, status, episodes, halts, errors, mean progress, and the
    tasks and agents of each on the line below.

    A run whose run.json says running but whose writer is gone is shown as interrupted.
    """
    from hazmat.replay.timeline import runs_rows

    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such folder", hint="pass the folder given to --out")
    rows = runs_rows(directory)
    if as_json:
        print(json.dumps(rows, sort_keys=True))
        return
    if not rows:
        console.err().print(f"no runs in {directory}", highlight=False, soft_wrap=True)
        return
    con = console.out()
    width = con.width if con.is_terminal else 160
    for line in runs_lines(rows, width):
        con.print(line, highlight=False, soft_wrap=True)


RUNS_COLUMNS = (("run", 26, "<"), ("kind", 8, "<"), ("status", 11, "<"), ("episodes", 8, ">"),
                ("halted", 6, ">"), ("errors", 6, ">"), ("progress", 8, ">"))  # fmt: skip
"""The ``hazmat runs`` columns (name, width, alignment): 80 characters at the most."""


def runs_lines(rows: list[dict[str, Any]], width: int) -> list[str]:
    """The ``hazmat runs`` listing as rich-markup lines, each at most ``width`` wide (from
    80 columns up): one line of figures per run, its tasks and agents on the line below."""
    from rich.markup import escape

    def cells(values: list[str]) -> str:
        out = []
        for (name, w, align), value in zip(RUNS_COLUMNS, values, strict=True):
            w = max(w, len(value)) if name == "run" else w
            out.append(f"{value:{align}{w}}")
        return out[0] + "  " + " ".join(out[1:])

    lines = [f"[bold]{escape(cells([c[0] for c in RUNS_COLUMNS]))}[/]"]
    colours = {"interrupted": "yellow", "running": "cyan", "unreadable": "magenta"}
    for r in rows:
        status = str(r["status"])
        if status == "unreadable":
            lines.append(escape(cells([r["run_id"], "-", status, "", "", "", ""])))
            lines.append(f"  [dim]{escape(_fit(str(r.get('error')), width - 2))}[/]")
            continue
        progress = "-" if r["mean_progress"] is None else f"{r['mean_progress']:.2f}"
        row = cells(
            [
                str(r["run_id"]),
                str(r.get("kind", "run")),
                status,
                f"{r['ended']}/{r['episodes']}",
                str(len(r["halted"])),
                str(r["errors"]),
                progress,
            ]
        )
        colour = colours.get(status, "green")
        lines.append(escape(row).replace(status, f"[{colour}]{status}[/]", 1))
        what = f"{_names(r['tasks'])} · {_names(r['agents'])}"
        if r.get("parent_run"):
            what += f" · replay of {r['parent_run']}"
        lines.append(f"  [dim]{escape(_fit(what, width - 2))}[/]")
    return lines


def _names(items: list[str], limit: int = 3) -> str:
    if not items:
        return "-"
    text = ", ".join(items[:limit])
    return text + (f" +{len(items) - limit}" if len(items) > limit else "")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


@command(app)
def show(
    run: Annotated[str, typer.Argument(help="run directory or run id (under ./runs)")],
    episode: Annotated[
        str | None, typer.Option("--episode", "-e", help="only this episode")
    ] = None,
    step: Annotated[int | None, typer.Option("--step", help="only step N")] = None,
    decisions_only: Annotated[
        bool, typer.Option("--decisions-only", help="only steps the policy did not simply allow")
    ] = False,
    tool: Annotated[str | None, typer.Option("--tool", help="only calls of this tool")] = None,
    around_halt: Annotated[
        int | None, typer.Option("--around-halt", help="only the K steps before and after a halt")
    ] = None,
    html: Annotated[
        bool, typer.Option("--html", help="write a self-contained HTML timeline instead")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file (default RUN/timeline.html)")
    ] = None,
    pager: Annotated[
        bool, typer.Option("--pager/--no-pager", help="page long output when stdout is a terminal")
    ] = True,
) -> None:
    """Show a recorded run as a timeline: model messages, calls, decisions, outputs, halts.

    Outputs are shown whole (blobs resolved, outputs cut for the model included).
    Works on interrupted and damaged records up to their last event.
    """
    from hazmat.replay.timeline import ShowFilter, run_renderables
    from hazmat.replay.trace import load_run

    path = resolve_run(run)
    trace = load_run(path)
    filt = ShowFilter(step=step, tool=tool, decisions_only=decisions_only, around_halt=around_halt)
    if html:
        from hazmat.replay.html import render_html

        dest = out or path / timeline_name(episode, step, tool, decisions_only, around_halt)
        page = render_html(trace, episode=episode, filt=filt)
        try:
            dest.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{dest}: cannot write: {exc.strerror or exc}") from None
        print(dest)
        return
    if out is not None:
        raise ConfigError("--out goes with --html")
    items = run_renderables(trace, episode=episode, filt=filt)
    con = console.out()
    if not con.is_terminal:
        con.width = max(con.width, 120)
    if pager and con.is_terminal:
        # as git does: colours shown (R), no pager for a page or less (F), the text left
        # on the screen after quitting (X); a user's own LESS wins
        os.environ.setdefault("LESS", "FRX")
        with con.pager(styles=True):
            for item in items:
                con.print(item)
    else:
        for item in items:
            con.print(item)


def timeline_name(
    episode: str | None,
    step: int | None,
    tool: str | None,
    decisions_only: bool,
    around_halt: int | None,
) -> str:
    """The file a ``show --html`` view goes to: ``timeline.html`` for the whole run, a name
    saying which episode and which window otherwise (a partial view never overwrites the
    run's full timeline)."""
    parts = ["timeline"]
    if episode:
        parts.append(episode)
    if step is not None:
        parts.append(f"step{step}")
    if tool:
        parts.append(tool)
    if decisions_only:
        parts.append("decisions")
    if around_halt is not None:
        parts.append(f"around-halt{around_halt}")
    return "-".join(parts).replace("/", "_") + ".html"


@command(app)
def replay(
    run: Annotated[str, typer.Argument(help="run directory or run id (under ./runs)")],
    episode: Annotated[
        str | None,
        typer.Option(
            "--episode", "-e", help="episode to re-execute (or to re-police; default: all)"
        ),
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", "-s", help="backend (default: the recorded one)")
    ] = None,
    until: Annotated[int | None, typer.Option("--until", help="stop after step N")] = None,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="keep the sandbox and open a shell in it (see hazmat sandbox shell --attach)",
        ),
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="re-police the recorded trace with this policy file ('default' for "
            "the built-in one): no sandbox, no model",
        ),
    ] = None,
    task_overrides: Annotated[
        bool,
        typer.Option(
            "--task-overrides/--no-task-overrides",
            help="re-police: put each task's own policy overrides on top of the file",
        ),
    ] = True,
    env: Annotated[
        str,
        typer.Option(
            "--env",
            help="sandbox from the task as it is now (task) or from the recorded spec (recorded)",
        ),
    ] = "task",
    allow_other_image: Annotated[
        bool,
        typer.Option(
            "--allow-other-image",
            help="docker: replay on the current image when the recorded one is gone",
        ),
    ] = False,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="regex whose matches are not compared (repeatable)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="where the replay's own run goes (default: next to RUN)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Re-execute a recorded episode and compare it with the record, or re-police a run.

    Re-execute (default): rebuilds the sandbox (docker: on the recorded image id),
    regenerates the secrets from the recorded seed, plays the recorded model
    responses through the real agent loop into a new run (parent_run = RUN), and
    reports `identical` or `diverged at step N: ...` (exit 1 when diverged).
    Re-police (--policy FILE): runs the policy over the recorded trace and reports,
    per episode, the first step it blocks or halts and every decision that differs.
    """
    path = resolve_run(run)
    if policy is not None:
        if sandbox or until is not None or keep:
            raise ConfigError(
                "--policy re-polices the record: --sandbox, --until and --keep do not apply"
            )
        _repolice(path, str(policy), episode, task_overrides, as_json)
        return
    from hazmat.replay.trace import load_run

    trace = load_run(path)
    if episode is None:
        if len(trace.episodes) != 1:
            raise ConfigError(
                f"{path}: pick an episode with --episode",
                hint="episodes: " + ", ".join(trace.episodes),
            )
        episode = next(iter(trace.episodes))
    if keep and as_json and (sandbox or _recorded_backend(trace, episode)) != "docker":
        raise ConfigError("--keep on a local sandbox serves a shell on this terminal; drop --json")
    _reexecute(
        path, episode, sandbox, until, keep, env, allow_other_image, ignore or [], out, as_json
    )


def _recorded_backend(trace: Any, episode: str) -> str:
    ep = trace.episode(episode)
    return str((ep.ready or {}).get("backend") or (ep.start or {}).get("backend") or "local")


def _reexecute(
    path: Path,
    episode: str,
    sandbox: str | None,
    until: int | None,
    keep: bool,
    env: str,
    allow_other_image: bool,
    ignore: list[str],
    out: Path | None,
    as_json: bool,
) -> None:
    from hazmat.replay.attach import serve_shell
    from hazmat.replay.reexec import ReplayReport, replay_episode
    from hazmat.sandbox import Detachable, Sandbox

    err = console.err()

    async def on_kept(sb: Sandbox, report: ReplayReport) -> None:
        _print_replay(report, err)
        if isinstance(sb, Detachable):  # kept outside this process: attach to it later
            return
        err.print(
            f"[bold]shell in the replayed sandbox[/] (state after step "
            f"{until or report.steps_compared}); Ctrl-D ends it and stops the sandbox"
        )
        await serve_shell(sb)

    import asyncio

    report = asyncio.run(
        replay_episode(
            path,
            episode,
            backend=sandbox,
            out_dir=out,
            until=until,
            keep=keep,
            env=env,
            allow_other_image=allow_other_image,
            ignore=ignore,
            on_kept=on_kept if keep else None,
        )
    )
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), sort_keys=True))
    elif not keep:
        _print_replay(report, _wide(console.out()))
    elif report.kept is not None and report.kept.container is not None:
        console.out().print(
            f"sandbox kept: open a shell with [bold]{report.kept.attach}[/]\n"
            f"remove it with [bold]{report.kept.cleanup}[/]"
        )
    if not report.identical:
        raise typer.Exit(1)


def _print_replay(report: Any, con: Console) -> None:
    from rich.markup import escape

    shifted = report.environment or any(n in report.summary for n in report.notes)
    style = "bold red" if not report.identical else "yellow" if shifted else "green"
    con.print(
        f"replay of {escape(report.run_id)} {escape(report.episode_id)} "
        f"({escape(report.task_id)}) on {escape(report.backend)}: "
        f"[{style}]{escape(report.summary)}[/]",
        highlight=False,
        soft_wrap=True,
    )
    con.print(
        f"  recorded end: {report.recorded_end}; replayed end: {report.replayed_end}", markup=False
    )
    for d in report.divergences[1:8]:
        at = f"step {d.step}" if d.step is not None else "end"
        con.print(f"  also at {at}: {d.message}", markup=False)
    for line in report.environment[:10]:
        con.print(f"  sandbox spec differs: {line}", style="yellow", markup=False)
    for note in report.notes:
        if note not in report.summary:  # said once
            con.print(f"  note: {note}", style="dim", markup=False)
    con.print(f"  replay record: {report.replay_run}", style="dim", markup=False)


def _repolice(
    path: Path, policy: str, episode: str | None, task_overrides: bool, as_json: bool
) -> None:
    from rich.markup import escape

    from hazmat.replay.repolice import repolice_run

    report = repolice_run(
        path, policy, task_overrides=task_overrides, episodes=[episode] if episode else None
    )
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), sort_keys=True))
        return
    con = _wide(console.out())
    con.print(
        f"re-policed {report.run_id} with {report.policy}: {len(report.episodes)} "
        f"episode(s), {report.changed} with different decisions ({report.seconds:.2f}s)"
    )
    for p in report.record_problems:
        con.print(f"  warning: the record does not verify: {p}", style="bold red", markup=False)
    for ep in report.episodes:
        colour = (
            "red"
            if ep.first_halt_step is not None
            else ("yellow" if ep.first_block_step is not None else "green")
        )
        con.print(
            f"[bold]{escape(ep.episode_id)}[/] {escape(ep.task_id)} {escape(ep.agent)}: "
            f"[{colour}]{escape(ep.summary)}[/]"
        )
        for d in ep.differences[:20]:
            flag = " (after the new halt)" if d.after_halt else ""
            con.print(
                f"    step {d.step} {d.stage} {d.tool}: {d.recorded}"
                f"{_rules(d.recorded_rules)} -> {d.new}{_rules(d.new_rules)}{flag}",
                markup=False,
            )
        if len(ep.differences) > 20:
            con.print(f"    ... {len(ep.differences) - 20} more")
        for n in ep.notes:
            con.print(f"    note: {n}", style="dim", markup=False)
    if any(ep.not_evaluated for ep in report.episodes):
        con.print(
            "calls the record shows refused never ran: their after stage was not evaluated",
            style="dim",
        )


def _wide(con: Console) -> Console:
    if not con.is_terminal:
        con.width = max(con.width, 160)
    return con


def _rules(rules: list[str]) -> str:
    return f" [{', '.join(rules)}]" if rules else ""
