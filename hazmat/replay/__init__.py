"""Replay of recorded runs: verification (``verify``), and later timeline, re-execution
and re-policing."""
