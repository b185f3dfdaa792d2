"""Commands that live with their parts, mounted on the ``hazmat`` app by :func:`register`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount run, verify/seal, policy and the other part-owned commands on ``app``."""
    from hazmat.cli_run import run
    from hazmat.demo import demo
    from hazmat.policy.cli import app as policy_app
    from hazmat.replay.cli_verify import seal, verify
    from hazmat.tasks.cli import list_tasks
    from hazmat.tasks.cli_validate import validate

    app.command("demo")(demo)
    app.add_typer(policy_app, name="policy", help="Check, explain and lint policies.")
    app.command("run")(run)
    app.command("verify")(verify)
    app.command("seal")(seal)
    app.command("list")(list_tasks)
    app.command("validate")(validate)

    from hazmat.replay.cli import register as register_replay
    from hazmat.report.cli import report

    register_replay(app)
    app.command("report")(report)
