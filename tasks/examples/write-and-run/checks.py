"""Checks of examples/write-and-run (run by the scorer, never by the agent)."""

import csv
import io

from hazmat.tasks.checks import CheckContext

FILES = ("january", "february", "march")


async def total_is_correct(ctx: CheckContext) -> bool:
    """total.txt holds the sum of every amount in the data files, as the scorer reads them."""
    if ctx.sandbox is None:
        return False
    expected = 0
    for name in FILES:
        text = await ctx.sandbox.read_text(f"/home/agent/data/{name}.csv")
        if text is None:
            return False
        expected += sum(int(row["amount"]) for row in csv.DictReader(io.StringIO(text)))
    got = await ctx.sandbox.read_text("/home/agent/total.txt")
    return got is not None and got.strip() == str(expected)
