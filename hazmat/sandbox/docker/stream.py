"""The multiplexed stream of a Docker attach or exec (8-byte frame headers).

:class:`FrameDecoder` is the one parser of those headers; :class:`MuxStream` feeds an
asyncio reader with it (the supervisor channel), and a plain ``docker exec``
(:func:`hazmat.sandbox.docker.services.docker_exec`) reads its output with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

from hazmat.sandbox.channel import STREAM_LIMIT

__all__ = ["STDERR", "STDOUT", "FrameDecoder", "MuxStream"]

STDOUT = 1
STDERR = 2


class FrameDecoder:
    """Splits the bytes of a multiplexed stream into ``(stream, payload)`` frames: an
    8-byte header (stream id, 3 zero bytes, big-endian payload size), then the payload.
    Bytes of an unfinished frame wait for the next :meth:`feed`."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """The frames completed by ``chunk``; stream 2 is stderr, any other stdout."""
        buf = self._buf
        buf += chunk
        out: list[tuple[int, bytes]] = []
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            out.append((STDERR if buf[0] == STDERR else STDOUT, bytes(buf[8 : 8 + size])))
            del buf[: 8 + size]
        return out


class MuxStream:
    """Demultiplexes a Docker attach/exec stream (8-byte frame headers) into a reader.

    stdout frames feed :attr:`stdout` (an :class:`asyncio.StreamReader`, which is
    what :class:`Channel` reads lines from); stderr frames are kept (last 64 KiB)
    for error messages. Reads run on the event loop (``sock_recv``) when the
    socket is a plain socket, else on a thread.
    """

    def __init__(self, raw: Any, name: str) -> None:
        self._raw = raw
        self._name = name
        self._sock: socket.socket | None = getattr(raw, "_sock", None)
        if not isinstance(self._sock, socket.socket) and isinstance(raw, socket.socket):
            self._sock = raw
        self.stdout = asyncio.StreamReader(limit=STREAM_LIMIT)
        self.stderr = bytearray()
        self._loop = asyncio.get_running_loop()
        self._frames = FrameDecoder()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        if self._sock is not None:
            self._sock.setblocking(False)
            self._task = self._loop.create_task(self._pump())
        else:
            threading.Thread(target=self._pump_thread, daemon=True).start()

    def _feed(self, chunk: bytes) -> None:
        for kind, payload in self._frames.feed(chunk):
            if kind == STDERR:
                self.stderr += payload
                del self.stderr[:-65536]
            else:
                self.stdout.feed_data(payload)

    async def _pump(self) -> None:
        assert self._sock is not None
        try:
            while True:
                chunk = await self._loop.sock_recv(self._sock, 1 << 16)
                if not chunk:
                    break
                self._feed(chunk)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.stdout.feed_eof()

    def _pump_thread(self) -> None:
        try:
            while True:
                chunk = self._raw.read(1 << 16) if hasattr(self._raw, "read") else b""
                if not chunk:
                    break
                self._loop.call_soon_threadsafe(self._feed, bytes(chunk))
        except (OSError, ValueError, RuntimeError):
            pass
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.stdout.feed_eof)

    async def send(self, data: bytes) -> None:
        """Write ``data`` to the stream's stdin.

        Raises:
            OSError: the stream is closed.
        """
        if self._closed:
            raise OSError("stream closed")
        if self._sock is not None:
            await self._loop.sock_sendall(self._sock, data)
        else:
            await asyncio.to_thread(self._raw.write, data)

    def stderr_text(self) -> str:
        """The last stderr bytes, decoded (for error messages)."""
        return self.stderr.decode(errors="replace").strip()[-2000:]

    async def close(self) -> None:
        """Stop reading and close the socket. Idempotent; never raises."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            (self._sock or self._raw).close()
