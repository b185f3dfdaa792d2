"""A warm pool: started sandboxes waiting for episodes, so an episode does not wait
for a container start.

Only backends that declare :class:`~hazmat.sandbox.base.Poolable` are pooled, and only
the specs they can finish after start (Docker: no services, every file under ``/tmp``
or the workspace; see :meth:`DockerSandbox.poolable`). The pool keeps up to ``size``
bare sandboxes per base spec (the spec without files, setup and labels);
:meth:`WarmPool.acquire` takes one, places the episode's files and runs its setup
(:meth:`Poolable.adopt`), and starts a replacement in the background. Anything else is
started cold (a backend that cannot pool at all says so once in the log). Sandboxes
never go back to the pool: every episode still gets a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import structlog

from hazmat.sandbox.base import Poolable, Sandbox, SandboxSpec, lacks
from hazmat.sandbox.registry import create_sandbox, get_backend

__all__ = ["WarmPool"]

log = structlog.get_logger("hazmat.sandbox.pool")


class WarmPool:
    """Up to ``size`` started sandboxes per base spec, for one run.

    Use as an async context manager; leaving it stops every idle sandbox.
    """

    def __init__(self, backend: str, size: int, *, run_id: str) -> None:
        self.backend = backend
        self.size = size
        self.run_id = run_id
        self._idle: dict[str, asyncio.Queue[Sandbox]] = {}
        self._filling: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._closed = False
        self.hits = 0
        self.misses = 0
        self._warned = False

    @staticmethod
    def _bare(spec: SandboxSpec) -> SandboxSpec:
        return spec.model_copy(update={"files": {}, "setup": [], "labels": {}})

    @staticmethod
    def base_key(spec: SandboxSpec) -> str:
        """Specs with the same base key share pooled sandboxes."""
        return WarmPool._bare(spec).model_dump_json()

    def _key(self, spec: SandboxSpec) -> str:
        return self.base_key(spec)

    def _poolable(self, spec: SandboxSpec) -> bool:
        if self.size <= 0:
            return False
        cls = get_backend(self.backend)
        if not issubclass(cls, Poolable):
            if not self._warned:
                self._warned = True
                log.warning("pool_unsupported", why=lacks(cls, Poolable), backend=self.backend)
            return False
        return cls.poolable(spec)

    async def _start_one(self, bare: SandboxSpec, key: str) -> None:
        sb = create_sandbox(
            self.backend, bare, run_id=self.run_id, episode_id=f"pool{next(self._ids):03d}"
        )
        try:
            await sb.start()
        except BaseException:
            await sb.stop()
            raise
        if self._closed:
            await sb.stop()
            return
        await self._idle[key].put(sb)

    def _fill(self, spec: SandboxSpec) -> None:
        key = self._key(spec)
        queue = self._idle.setdefault(key, asyncio.Queue())
        want = self.size - queue.qsize() - sum(1 for t in self._filling if t.get_name() == key)
        for _ in range(max(0, want)):
            task = asyncio.get_running_loop().create_task(
                self._start_one(self._bare(spec), key), name=key
            )
            self._filling.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._filling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("pool_start_failed", error=repr(task.exception()))

    async def warm(self, specs: list[SandboxSpec], *, wait: float = 0.0) -> None:
        """Start filling the pool for these specs; with ``wait``, wait up to that many
        seconds until each poolable spec has a started sandbox ready."""
        keys = []
        for spec in specs:
            if self._poolable(spec):
                self._fill(spec)
                keys.append(self._key(spec))
        deadline = asyncio.get_running_loop().time() + wait
        while keys and asyncio.get_running_loop().time() < deadline:
            if all(not self._idle[k].empty() for k in keys):
                return
            if not any(t.get_name() in keys for t in self._filling):
                return  # every start failed or finished: nothing to wait for
            await asyncio.sleep(0.02)

    async def acquire(self, spec: SandboxSpec, *, episode_id: str) -> tuple[Sandbox, bool]:
        """A started sandbox for ``spec``: from the pool when one is ready, else cold.

        Returns the sandbox and whether it came warm from the pool. The caller
        stops it as usual.
        """
        key = self._key(spec)
        queue = self._idle.get(key)
        if queue is not None and not queue.empty() and self._poolable(spec):
            sb = queue.get_nowait()
            self._fill(spec)
            try:
                if not isinstance(sb, Poolable):  # only Poolable backends fill the queue
                    raise TypeError(lacks(sb, Poolable))
                await sb.adopt(spec, episode_id=episode_id)
            except BaseException:
                await sb.stop()
                raise
            self.hits += 1
            return sb, True
        self.misses += 1
        if self._poolable(spec):
            self._fill(spec)
        sb = create_sandbox(self.backend, spec, run_id=self.run_id, episode_id=episode_id)
        try:
            await sb.start()
        except BaseException:
            await sb.stop()
            raise
        return sb, False

    async def __aenter__(self) -> WarmPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every idle sandbox and every start still under way."""
        self._closed = True
        for task in list(self._filling):
            task.cancel()
        for task in list(self._filling):
            with contextlib.suppress(BaseException):
                await task
        for queue in self._idle.values():
            while not queue.empty():
                await queue.get_nowait().stop()
