"""Commands that live with their parts, mounted on the ``hazmat`` app by :func:`register`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount verify/seal, run, demo, policy and the other part-owned commands on ``app``."""
    from hazmat.replay.cli_verify import seal, verify

    app.command("verify")(verify)
    app.command("seal")(seal)
