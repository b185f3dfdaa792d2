"""``python -m hazmat.cli``: the ``hazmat`` command."""

from hazmat.cli import main

main()
