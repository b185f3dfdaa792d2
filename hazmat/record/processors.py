"""The record processors a :class:`~hazmat.record.log.Recorder` runs on every event's
fields before chaining it, tiny structlog-style callables
``(recorder, event_name, fields) -> fields``: JSON conversion, redaction, blob
offloading, validation against the event's payload model.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, Final, Protocol

from pydantic import BaseModel

from hazmat.errors import RecordError
from hazmat.record.events import (
    INLINE_LIMIT,
    LITERAL_KEY,
    blob_ref,
    needs_literal,
    validate_fields,
)
from hazmat.record.redact import Redactor

__all__ = ["DEFAULT_PROCESSORS", "Processor", "RecorderView", "to_jsonable"]


class RecorderView(Protocol):
    """What a processor uses of the :class:`~hazmat.record.log.Recorder` that runs it."""

    redactor: Redactor
    strict: bool
    log: Any

    def _store_blob(self, data: bytes) -> str: ...


Processor = Callable[[RecorderView, str, dict[str, Any]], dict[str, Any]]
"""A record processor: ``(recorder, event_name, fields) -> fields``."""


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data; ``bytes`` are kept (the blob offloader takes them).

    pydantic models dump in JSON mode, tuples and sets become lists, paths,
    dates and enums become strings, non-finite floats become strings, other
    objects their ``str()``.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump(mode="json"))
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(v) for v in value), key=repr)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    return str(value)


def _jsonable_processor(rec: RecorderView, event: str, fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = to_jsonable(fields)
    return out


def _redact_processor(rec: RecorderView, event: str, fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = rec.redactor.value(fields)
    return out


def _offload_processor(rec: RecorderView, event: str, fields: dict[str, Any]) -> dict[str, Any]:
    def walk(v: Any) -> Any:
        if isinstance(v, str):
            if len(v) > INLINE_LIMIT // 4:
                data = v.encode("utf-8")
                if len(data) > INLINE_LIMIT:
                    return blob_ref(rec._store_blob(data), len(data))
            return v
        if isinstance(v, bytes):
            if len(v) <= INLINE_LIMIT:
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return blob_ref(rec._store_blob(v), len(v))
        if isinstance(v, dict):
            inner = {k: walk(x) for k, x in v.items()}
            # data that looks like a blob reference is wrapped, never read as one
            return {LITERAL_KEY: inner} if needs_literal(v) else inner
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    out: dict[str, Any] = {k: walk(x) for k, x in fields.items()}
    return out


def _validate_processor(rec: RecorderView, event: str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        validate_fields(event, fields)
    except RecordError as exc:
        if rec.strict:
            raise
        # never lose an event over its shape: keep it, say what is off
        fields["schema_error"] = exc.message
        rec.log.warning("record_schema_error", error=exc.message)
    return fields


DEFAULT_PROCESSORS: Final[tuple[Processor, ...]] = (
    _jsonable_processor,
    _redact_processor,
    _offload_processor,
    _validate_processor,
)
