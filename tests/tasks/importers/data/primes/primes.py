"""A small task family in METR's format (for hazmat's importer tests): list the first N primes.

Two tasks (``five``, ``twelve``); ``start`` leaves a note for the agent; the agent writes
``/home/agent/primes.txt`` and submits ``done``. ``intermediate_score`` is the fraction of
the expected primes written so far (in order); ``score`` is 1.0 for the full list and the
submission ``done``, else half the intermediate score.
"""

from __future__ import annotations

import os
from pathlib import Path

OUTPUT = Path("/home/agent/primes.txt")


def _primes(n: int) -> list[int]:
    found: list[int] = []
    k = 2
    while len(found) < n:
        if all(k % p for p in found if p * p <= k):
            found.append(k)
        k += 1
    return found


def _fraction(t: dict) -> float:
    want = _primes(t["n"])
    try:
        got = [int(x) for x in OUTPUT.read_text().split()]
    except (OSError, ValueError):
        return 0.0
    right = 0
    for a, b in zip(got, want, strict=False):
        if a != b:
            break
        right += 1
    return right / len(want)


class TaskFamily:
    standard_version = "0.3.0"
    required_environment_variables: list[str] = []

    @staticmethod
    def get_tasks() -> dict[str, dict]:
        return {"five": {"n": 5}, "twelve": {"n": 12}}

    @staticmethod
    def get_instructions(t: dict) -> str:
        return (
            f"Write the first {t['n']} prime numbers, one per line, to /home/agent/primes.txt. "
            "When you are done, submit the word done."
        )

    @staticmethod
    def get_permissions(t: dict) -> list[str]:
        return []

    @staticmethod
    def start(t: dict) -> None:
        note = Path("/home/agent/README.txt")
        note.write_text(f"The checker wants the first {t['n']} primes in {OUTPUT}.\n")
        os.chown(note, 1000, 1000)

    @staticmethod
    def intermediate_score(t: dict) -> dict:
        value = _fraction(t)
        return {"score": value, "message": {"correct_prefix": value}}

    @staticmethod
    def score(t: dict, submission: str) -> float | None:
        value = _fraction(t)
        if value == 1.0 and submission.strip() == "done":
            return 1.0
        return value / 2
