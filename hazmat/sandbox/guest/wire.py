"""What the guest programs need from the standard library, cheap to import (python
3.8+): JSON lines, base64, ``suppress`` and an epoll selector.

Every module a program imports is paid on the way to the sandbox's first command;
``json``, ``base64``, ``contextlib``, ``selectors`` and ``signal`` pull in ``re``,
``enum``, ``collections`` and ``functools`` (together about 8 ms of a ~30 ms start).
The JSON work itself is done by CPython's C accelerator ``_json`` (what ``json`` uses
too): this module drives it directly, checks at import that it round-trips a sample,
and falls back to ``json`` when it is missing or different. base64 comes from
``binascii``; the selector is ``select.epoll``; signals come from ``_signal`` (see
``procs.py``).
"""

from __future__ import annotations

import binascii
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["Selector", "b64decode", "b64encode", "dumps", "loads", "suppress"]


def b64encode(data: bytes | bytearray | memoryview) -> str:
    """``data`` as base64 text (no newline)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64decode(text: str | bytes) -> bytes:
    """The bytes of base64 ``text`` (characters outside the alphabet are skipped).

    Raises binascii.Error (a ValueError) on bad padding."""
    return binascii.a2b_base64(text)


class suppress:
    """``with suppress(OSError): ...``: ignore those exceptions (``contextlib.suppress``)."""

    def __init__(self, *kinds: type[BaseException]) -> None:
        self.kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, self.kinds)


class Key:
    """A registered descriptor, its object and its data (what ``selectors`` calls a key)."""

    __slots__ = ("data", "fd", "fileobj")

    def __init__(self, fd: int, fileobj: Any, data: Any) -> None:
        self.fd = fd
        self.fileobj = fileobj
        self.data = data


class Selector:
    """Readable descriptors: the part of ``selectors.EpollSelector`` the guest programs
    use (register a descriptor or an object with ``fileno()``, with data)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._keys: dict[int, Key] = {}
        self._fds: dict[int, int] = {}  # id(fileobj) -> fd, for objects closed since

    def register(self, fileobj: Any, data: Any = None) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        self._epoll.register(fd, select.EPOLLIN)
        self._keys[fd] = Key(fd, fileobj, data)
        self._fds[id(fileobj)] = fd

    def unregister(self, fileobj: Any) -> None:
        fd = self._fds.pop(id(fileobj), fileobj if isinstance(fileobj, int) else -1)
        if self._keys.pop(fd, None) is not None:
            with suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    def select(self, timeout: float | None = None) -> list[Key]:
        """The keys of descriptors ready to read (or closed), waiting up to ``timeout``."""
        while True:
            try:
                ready = self._epoll.poll(-1 if timeout is None else max(timeout, 0.0))
                break
            except InterruptedError:
                continue
        return [self._keys[fd] for fd, _ in ready if fd in self._keys]

    def close(self) -> None:
        self._epoll.close()
        self._keys.clear()
        self._fds.clear()


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")


def _c_codec() -> tuple[Callable[[str | bytes], Any], Callable[[Any], bytes]]:
    import _json

    scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
    encode = _json.make_encoder(
        None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def loads(line: str | bytes) -> Any:
        text = line.decode("utf-8") if isinstance(line, (bytes, bytearray)) else line
        text = text.strip()
        try:
            obj, end = scan(text, 0)
        except StopIteration:
            raise ValueError("not JSON") from None
        if end != len(text):
            raise ValueError("not JSON: extra data")
        return obj

    def dumps(obj: Any) -> bytes:
        return "".join(encode(obj, 0)).encode("ascii")

    return loads, dumps


def _default(obj: Any) -> Any:
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _py_codec() -> tuple[Callable[[str | bytes], Any], Callable[[Any], bytes]]:
    import json

    def loads(line: str | bytes) -> Any:
        return json.loads(line)

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode("ascii")

    return loads, dumps


def _pick() -> tuple[Callable[[str | bytes], Any], Callable[[Any], bytes]]:
    sample = {"id": 7, "ok": True, "x": None, "s": 'a"\\\n\u00e9\U0001f600', "f": 1.5, "l": [1, {}]}
    try:
        c_loads, c_dumps = _c_codec()
        text = c_dumps(sample)
        if c_loads(text) == sample and c_loads(b' {"a": [1, 2]} \n') == {"a": [1, 2]}:
            return c_loads, c_dumps
    except Exception:  # no accelerator, or one that differs: use json itself
        pass
    return _py_codec()


loads, dumps = _pick()
"""``loads(line)``: one JSON value (raises ValueError); ``dumps(obj)``: compact ASCII JSON
bytes, no newline."""
