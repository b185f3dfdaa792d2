"""Redaction: a planted API key never reaches an event, a blob, run.json or a log line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hazmat.record import Recorder, Redactor, configure_logging, secrets_from_env

PLANTED = "sk-planted-Zq9xY8wV7uT6sR5qP4oN3"
ANT = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv"
DB = "hunter2-db-password"


def _all_bytes(run_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file())


def test_planted_key_is_redacted_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890abcdef")
    log = io.StringIO()
    configure_logging("debug", stream=log)
    try:
        rec = Recorder.create(
            tmp_path,
            config={"argv": ["hazmat", "run", f"--key={PLANTED}"]},
            secrets={"db_password": DB},
        )
        ep = rec.bind("e1")
        ep.start(task_id="t", agent="openai:gpt-x")
        ep.emit(
            "model_call",
            messages=[ep.blob_json({"role": "system", "content": f"key is {PLANTED}"})],
            response={"content": f"I found {PLANTED} and {ANT}", PLANTED: "as a key"},
            usage={},
        )
        ep.emit("tool_call", id="1", tool="bash", args={"command": f"echo {DB}"})
        ep.emit(
            "tool_result",
            exit_code=0,
            stdout=("env dump\n" * 1000) + f"OPENAI_API_KEY={PLANTED}\n",  # long: a blob
            stderr=f"MY_SERVICE_TOKEN=tok-1234567890abcdef {DB}".encode(),  # bytes
        )
        digest = ep.blob(f"file with {PLANTED} inside".encode())
        ep.end("submitted")
        rec.finish()
    finally:
        configure_logging("warning", stream=io.StringIO())
    everything = _all_bytes(rec.path) + log.getvalue().encode()
    for secret in (PLANTED, ANT, DB, "tok-1234567890abcdef"):
        assert secret.encode() not in everything, secret
    assert b"[REDACTED:OPENAI_API_KEY]" in everything
    assert b"[REDACTED:anthropic-key]" in everything
    assert b"[REDACTED:db_password]" in everything
    assert b"[REDACTED:MY_SERVICE_TOKEN]" in everything
    assert (rec.blobs_path / digest).read_bytes() == b"file with [REDACTED:OPENAI_API_KEY] inside"


def test_secrets_from_env_picks_key_like_names() -> None:
    env = {
        "OPENAI_API_KEY": "sk-aaaaaaaaaaaaaaaa",
        "GITHUB_TOKEN": "ghp_bbbbbbbbbbbb",
        "AWS_SECRET_ACCESS_KEY": "cccccccccccccccc",
        "HOME": "/home/user-with-long-path",
        "SOME_TOKEN": "short",  # too short to redact safely
    }
    assert set(secrets_from_env(env)) == {"OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY"}


def test_redactor_nested_values_keys_bytes_and_processor() -> None:
    r = Redactor({"X_API_KEY": "value-of-x-key"}, from_env=False)
    got = r.value({"a": ["value-of-x-key", {"value-of-x-key": 1}], "b": (b"value-of-x-key",)})
    assert got == {
        "a": ["[REDACTED:X_API_KEY]", {"[REDACTED:X_API_KEY]": 1}],
        "b": [b"[REDACTED:X_API_KEY]"],
    }
    assert r.text("no secrets here") == "no secrets here"
    assert r.text("a sk-ABCDEFGHIJKLMNOPQRST z") == "a [REDACTED:openai-key] z"
    assert r.text("key=sk-proj-ABCDEFGHIJKLMNOPQRST") == "key=[REDACTED:openai-key]"
    # not a key: "sk-" inside a word
    assert r.text("task-specific-tools-list-here") == "task-specific-tools-list-here"
    out = r(None, "info", {"event": "call", "auth": "Bearer value-of-x-key"})
    assert out["auth"] == "Bearer [REDACTED:X_API_KEY]"


def test_longest_secret_wins() -> None:
    r = Redactor({"SHORT": "abcdefgh", "LONG": "abcdefgh-and-more"}, from_env=False)
    assert r.text("abcdefgh-and-more") == "[REDACTED:LONG]"
