"""Replay of recorded runs, for investigators.

- :mod:`~hazmat.replay.verify`: chain, blobs and run.json hold (``hazmat verify``/``seal``).
- :mod:`~hazmat.replay.trace`: a run read back as episodes, turns and steps.
- :mod:`~hazmat.replay.timeline`: the terminal timeline (``hazmat show``) and ``hazmat runs``.
- :mod:`~hazmat.replay.html`: the self-contained HTML timeline (``hazmat show --html``).
- :mod:`~hazmat.replay.reexec`: re-execution compared step by step (``hazmat replay``).
- :mod:`~hazmat.replay.agent`: the replay agent, answering each turn as recorded.
- :mod:`~hazmat.replay.compare`: a record against its re-execution, and the report.
- :mod:`~hazmat.replay.kept`: sandboxes kept alive after a replay (``--keep``).
- :mod:`~hazmat.replay.normalize`: the documented volatile-field rules of that comparison.
- :mod:`~hazmat.replay.repolice`: another policy over the recorded trace (``--policy``).
- :mod:`~hazmat.replay.attach`: shells into sandboxes kept with ``--keep``.
- the commands live in :mod:`hazmat.cli.replay` and :mod:`hazmat.cli.records`.
"""
