"""Every registered backend against the conformance suite (``hazmat.sandbox.testing``).

One test per (backend, check): a backend registered later (in process or through the
``hazmat.sandboxes`` entry points) is checked here for free. The built-in ones run on
the real daemon and real bubblewrap; ``docker`` carries the docker marker (skipped
without a daemon, failed under ``HAZMAT_REQUIRE_DOCKER=1``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hazmat.sandbox import Sandbox, SandboxSpec, available_backends, get_backend
from hazmat.sandbox.local import LocalSandbox
from hazmat.sandbox.testing import CHECKS, Check, ConformanceError, run_check, self_check

MARKS = {"docker": [pytest.mark.docker], "local": [pytest.mark.local]}


def _cases() -> list[object]:
    return [
        pytest.param(backend, check, id=f"{backend}-{check.name}", marks=MARKS.get(backend, []))
        for backend in available_backends()
        for check in CHECKS
    ]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("backend", "check"), _cases())
def test_backend_conforms(
    backend: str, check: Check, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "docker":
        request.getfixturevalue("sandbox_image")  # built once, current
    outcome = asyncio.run(run_check(check, backend, tmp_path))
    if outcome is not None:
        pytest.skip(outcome)


class ForgetfulSandbox(LocalSandbox):
    """A broken backend: its exec reports a missing command as exit 1, not 127."""

    backend = "forgetful"

    async def exec(self, cmd: str | list[str], **kw: object) -> object:  # type: ignore[override]
        result = await super().exec(cmd, **kw)  # type: ignore[arg-type]
        return result.model_copy(update={"exit_code": 1}) if result.exit_code == 127 else result


@pytest.mark.local
@pytest.mark.timeout(120)
def test_the_suite_fails_a_backend_that_breaks_a_rule(tmp_path: Path) -> None:
    """The suite can fail: a backend that reports exit 1 for a missing command."""
    not_found = next(c for c in CHECKS if c.name == "not-found")
    with pytest.raises(ConformanceError, match="exits 127"):
        asyncio.run(run_check(not_found, ForgetfulSandbox, tmp_path))
    results = asyncio.run(self_check(ForgetfulSandbox, tmp_path, only=["exec", "not-found"]))
    assert results["exec"] is None
    assert "exits 127" in str(results["not-found"])


class LeakySandbox(LocalSandbox):
    """A broken backend: stop() forgets its backing folder."""

    backend = "leaky"

    async def stop(self) -> None:
        keep = self._backing
        self._backing = None
        await super().stop()
        self._backing = keep

    async def leftovers(self) -> list[str]:
        left = await super().leftovers()
        if self._backing is not None:
            self._backing.remove()  # the test's own cleanup, after the suite looked
        return left


@pytest.mark.local
@pytest.mark.timeout(120)
def test_the_suite_finds_what_a_backend_leaves_behind(tmp_path: Path) -> None:
    exec_check = next(c for c in CHECKS if c.name == "exec")
    with pytest.raises(ConformanceError, match="left behind after stop"):
        asyncio.run(run_check(exec_check, LeakySandbox, tmp_path))


def test_every_check_has_a_name_and_the_builtins_are_in_the_run() -> None:
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names))
    assert {"local", "docker"} <= set(available_backends())
    assert issubclass(get_backend("local"), Sandbox)
    assert SandboxSpec().sentinel  # the checks run with the default spec: sentinel on
