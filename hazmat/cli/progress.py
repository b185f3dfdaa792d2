"""Live progress, Ctrl-C and the end-of-run table, shared by ``run``, ``demo`` and ``validate``.

Ctrl-C once: no new episodes start, running ones finish their current step and end
``interrupted``, every sandbox is cleaned up. Ctrl-C twice: running episodes stop at
once, still cleaning up. The terminal's SIGINT reaches only this process: sandboxes,
sentinels and monitors run in their own sessions, so only the runner decides what stops.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hazmat.cli.console import err, visible

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console
    from rich.text import Text

    from hazmat.runner import EpisodeResult, PlannedEpisode, RunControl

__all__ = ["RunProgress", "error_summary", "print_results", "run_with_signals"]

T = TypeVar("T")


class RunProgress:
    """The live line (episodes done, running, halted, errors, ETA) and one line per
    finished episode. Without a terminal only the per-episode lines are printed."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        from rich.live import Live

        self.total = total
        self.done = 0
        self.running = 0
        self.halted = 0
        self.errors = 0
        self.stopping = False
        self.t0 = time.monotonic()
        self.console = err()
        self.live = (
            Live(self._render(), console=self.console, transient=True, refresh_per_second=4)
            if enabled
            else None
        )

    def _render(self) -> Text:
        from rich.text import Text

        elapsed = time.monotonic() - self.t0
        eta = "?"
        if self.done:
            eta = f"{elapsed / self.done * (self.total - self.done):.0f}s"
        state = (
            " [stopping after the current step; Ctrl-C again to stop now]" if self.stopping else ""
        )
        return Text(
            f"episodes {self.done}/{self.total} done, {self.running} running, "
            f"{self.halted} halted, {self.errors} errors, ETA {eta}{state}"
        )

    def plan(self, total: int, todo: int) -> None:
        """A resumed run: ``total`` episodes, of which ``todo`` run again (the counter
        starts at the ones already ended)."""
        self.total = total
        self.done = total - todo
        self._update()

    def stop_requested(self, interrupts: int) -> None:
        """Show that Ctrl-C was pressed (``interrupts`` times so far)."""
        self.stopping = True
        if interrupts >= 2:
            self._line("stopping now; cleaning up sandboxes")
        self._update()

    def started(self, item: PlannedEpisode) -> None:
        """An episode started."""
        self.running += 1
        self._update()

    def finished(self, r: EpisodeResult) -> None:
        """An episode ended (or was interrupted): one line, then the live line again."""
        self.running = max(0, self.running - 1)
        if r.reason == "interrupted":
            self._line(f"{r.episode_id} {r.task_id} {r.agent}: interrupted after step {r.steps}")
            self._update()
            return
        self.done += 1
        self.halted += r.reason == "halted"
        self.errors += r.reason == "error"
        why = end_detail(r)
        self._line(
            f"[{self.done}/{self.total}] {r.episode_id} {r.task_id} {r.agent}: {r.reason}"
            f"{f' ({why})' if why else ''} progress {r.progress:.2f}"
        )
        self._update()

    def _line(self, text: str) -> None:
        target = self.live.console if self.live is not None else self.console
        target.print(text, highlight=False, markup=False, soft_wrap=True)

    def _update(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def __enter__(self) -> RunProgress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)


def run_with_signals(
    make: Callable[[RunControl], Awaitable[T]],
    on_interrupt: Callable[[int], None] | None = None,
) -> T:
    """Run a coroutine with SIGINT/SIGTERM wired to a :class:`~hazmat.runner.RunControl`."""
    from hazmat.runner import RunControl

    control = RunControl()

    async def main() -> T:
        loop = asyncio.get_running_loop()

        def handler() -> None:
            control.interrupt()
            if on_interrupt:
                on_interrupt(control.interrupts)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, handler)
        try:
            return await make(control)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def end_detail(r: EpisodeResult) -> str:
    """The one-line cause shown after an end reason: the halting rule, the limit, the error."""
    if r.reason == "halted":
        return str((r.halt or {}).get("rule") or "")
    if r.reason == "error":
        return visible((r.error or r.detail or "").splitlines()[0] if (r.error or r.detail) else "")
    if r.reason == "limit":
        return visible(r.detail or "")
    return ""


def error_summary(results: list[EpisodeResult]) -> list[str]:
    """Episodes that ended ``error``, grouped by cause: ``6 episodes: OPENAI_API_KEY is not set``."""
    causes = Counter(end_detail(r) or "unknown cause" for r in results if r.reason == "error")
    return [f"{n} episode{'s' if n != 1 else ''}: {cause}" for cause, n in causes.most_common()]


def print_results(results: list[EpisodeResult], run_dir: Path, *, stream: Any = None) -> None:
    """Print the per-episode table (task, agent, end reason and its cause, progress, depth,
    steps, time), then the errors grouped by cause."""
    from rich import box
    from rich.table import Table

    from hazmat.cli.console import out

    con: Console = stream or out()
    if not con.is_terminal:
        con.width = max(con.width, 140)
    # one row per episode at 80 columns: no borders; only the end reason may wrap, and
    # the depth column (the deepest milestone, also in show and the report) goes first
    cols = ["episode", "task", "agent", "end", "progress", "depth", "steps", "time"]
    if con.width < 100:
        cols.remove("depth")
    table = Table(
        title=f"run {run_dir.name}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
    )
    for col in cols:
        table.add_column(
            col,
            justify="right" if col in ("progress", "steps", "time") else "left",
            overflow="fold",  # a narrow terminal wraps a cell, it never hides its end
            no_wrap=col != "end",
        )
    for r in results:
        why = end_detail(r)
        end = r.reason + (f" ({why})" if why else "")
        colour = {"halted": "red", "error": "magenta", "limit": "yellow"}.get(r.reason, "")
        cells = {
            "episode": r.episode_id,
            "task": r.task_id,
            "agent": r.agent,
            "end": f"[{colour}]{_escape(end)}[/]" if colour else _escape(end),
            "progress": f"{r.progress:.2f}",
            "depth": r.depth_id or "-",
            "steps": str(r.steps),
            "time": f"{r.duration:.1f}s",
        }
        table.add_row(*(cells[c] for c in cols))
    con.print(table)
    for line in error_summary(results):
        con.print(f"[magenta]error[/]: {_escape(line)}", highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
