# ruff: noqa: I001
"""The ``hazmat`` command: one module per command group, every command mounted at import.

::

    root.py      the app, global options (-v, --debug) and main(): errors -> one line
    console.py   consoles that redact secrets and show control characters visibly
    progress.py  live progress, Ctrl-C, the end-of-run table
    args.py      arguments several commands share (run directories, --out, --sandbox)
    doctor.py    hazmat doctor
    sandbox.py   hazmat sandbox exec|shell, hazmat image build, hazmat cleanup
    run.py       hazmat run (with the checks made before a run directory exists)
    demo.py      hazmat demo
    tasks.py     hazmat list, hazmat validate
    records.py   hazmat verify, hazmat seal
    replay.py    hazmat runs, hazmat show, hazmat replay
    report.py    hazmat report
    policy.py    hazmat policy check|explain|lint

Importing this package is cheap: command modules import what they need when they run.
"""

# Importing a command module mounts its commands; this order is the order of --help.
from hazmat.cli import demo  # noqa: F401
from hazmat.cli import run  # noqa: F401
from hazmat.cli import tasks  # noqa: F401
from hazmat.cli import replay  # noqa: F401
from hazmat.cli import records  # noqa: F401
from hazmat.cli import report  # noqa: F401
from hazmat.cli import policy  # noqa: F401
from hazmat.cli import sandbox  # noqa: F401
from hazmat.cli import doctor  # noqa: F401
from hazmat.cli.root import app, main

__all__ = ["app", "main"]
