"""``hazmat report RUN [RUN...]``: the scorecard, risk levels and gate of recorded runs;
``hazmat plan``: the epochs a gate decision needs at a given rate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hazmat.cli.root import app, command
from hazmat.errors import ConfigError, RecordError

__all__ = ["expand_runs", "plan", "report"]


def expand_runs(path: Path) -> list[Path]:
    """``path`` when it is a run directory, else the run directories up to two levels below.

    Raises:
        RecordError: neither ``path`` nor anything below it holds a run.json.
    """
    if (path / "run.json").is_file() or path.name == "run.json":
        return [path]
    found = sorted({*path.glob("*/run.json"), *path.glob("*/*/run.json")})
    if not found:
        raise RecordError(f"{path}: no run.json here or below", hint="is this a run directory?")
    return [f.parent for f in found]


@command(app)
def report(
    runs: Annotated[
        list[Path],
        typer.Argument(help="run directories (several: side by side), or folders of runs (pooled)"),
    ],
    html: Annotated[bool, typer.Option("--html", help="write the HTML report")] = False,
    md: Annotated[bool, typer.Option("--md", help="print Markdown (the default)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", "-t", help="risk thresholds YAML (default: the shipped one)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="write here instead of stdout (HTML default: RUN/report.html)"
        ),
    ] = None,
    merge: Annotated[
        bool,
        typer.Option("--merge", help="pool every run into one scorecard instead of side by side"),
    ] = False,
    gate_exit: Annotated[
        bool, typer.Option("--gate-exit", help="exit 3 when the gate says stop")
    ] = False,
) -> None:
    """Score runs: per task and agent progress, pass@k, funnels, halts, refusals, each rate
    with its interval; risk per category from thresholds and the gate (proceed, stop:
    reached, stop: cannot rule out), the rule it used and the epochs that would decide it.

    Several runs are compared side by side: per task and per category (paired by task)
    the difference with its interval, marked only when the interval excludes zero.
    A folder without run.json (e.g. a pytest ``--hazmat-out`` folder with one run
    per item under ``<worker>/``) stands for every run below it, pooled.
    Exit code 0 (3 with --gate-exit when the gate says stop), 1 when a run
    cannot be read or the thresholds file is bad. Formulas: docs/numbers.md.
    """
    from hazmat.report.html import write_html
    from hazmat.report.runs import load_run
    from hazmat.report.scorecard import Scorecard, build_scorecard
    from hazmat.report.text import render_json, render_markdown
    from hazmat.report.thresholds import load_thresholds

    if sum((html, md, as_json)) > 1:
        raise ConfigError("choose one of --html, --md, --json")
    th = load_thresholds(thresholds)
    groups = [expand_runs(p) for p in runs]
    if merge:
        groups = [[d for g in groups for d in g]]
    cards: list[Scorecard] = [build_scorecard([load_run(d) for d in g], th) for g in groups]
    if html:
        dest = out or (Path(runs[0]) / "report.html")
        write_html(cards, dest)
        print(f"report: {dest}", file=sys.stderr)
        print(
            f"gate: {'stop' if any(c.gate == 'stop' for c in cards) else 'proceed'}",
            file=sys.stderr,
        )
    else:
        text = render_json(cards) if as_json else render_markdown(cards)
        if out is None:
            sys.stdout.write(text)
        else:
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"{out}: cannot write: {exc.strerror or exc}") from exc
    if gate_exit and any(c.gate == "stop" for c in cards):
        raise typer.Exit(3)


@command(app)
def plan(
    rate: Annotated[
        float,
        typer.Option(
            "--rate",
            "-r",
            min=0.0,
            max=1.0,
            help="the true per-episode rate to plan for (pass@1 rate, or mean progress)",
        ),
    ],
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", "-t", help="risk thresholds YAML (default: the shipped one)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Plan a run: the epochs per task that separate the thresholds around a rate.

    For each metric of the thresholds file: the level the rate falls in, the epochs
    for the interval (at the file's confidence) to fit between the thresholds around
    it, and the epochs for the gate to decide (every stop_at threshold ruled out, or
    one confirmed). Maxima (pass_at_k, max_progress, depth) never narrow with more
    epochs. Exit code 0, 1 when the thresholds file is bad.
    """
    import json

    from hazmat.report.plan import plan as plan_rows
    from hazmat.report.text import render_plan
    from hazmat.report.thresholds import gate_rule, load_thresholds

    th = load_thresholds(thresholds)
    rows = plan_rows(th, rate)
    if as_json:
        doc = {
            "rate": rate,
            "thresholds": th.source,
            "gate_rule": gate_rule(th).model_dump(mode="json"),
            "rows": [r.model_dump(mode="json") for r in rows],
        }
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_plan(rows, th, rate))
