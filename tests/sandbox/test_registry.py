"""The backend registry: built-ins, in-process registration, and the ``hazmat.sandboxes``
entry points of installed distributions (a real dist-info folder on ``sys.path``, found
by ``importlib.metadata`` as pip would leave it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmat.errors import BackendUnavailableError, UnknownBackendError
from hazmat.sandbox import SandboxSpec, registry
from hazmat.sandbox.docker import DockerSandbox
from hazmat.sandbox.local import LocalSandbox

FAKE = '''
from hazmat.sandbox.local import LocalSandbox


class FakeSandbox(LocalSandbox):
    """A third-party backend: the local one under another name."""

    backend = "fake"


NotASandbox = object
'''


def install_fake(root: Path, entries: dict[str, str]) -> Path:
    """A distribution ``fakebackend`` with ``hazmat.sandboxes`` entry points, as pip installs it."""
    (root / "fakebackend.py").write_text(FAKE)
    info = root / "fakebackend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakebackend\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[hazmat.sandboxes]\n{lines}")
    return root


ENTRIES = {
    "fake": "fakebackend:FakeSandbox",
    "docker": "fakebackend:FakeSandbox",  # may not shadow the built-in
    "broken": "fakebackend_missing:Nope",
    "notasandbox": "fakebackend:NotASandbox",
}


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = install_fake(tmp_path, ENTRIES)
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ENTRIES:
        registry._loaded.pop(name, None)
    registry._loaded.pop("docker", None)
    sys.modules.pop("fakebackend", None)


def test_builtins_are_there_and_load_lazily() -> None:
    names = registry.available_backends()
    assert {"local", "docker"} <= set(names)
    assert registry.get_backend("local") is LocalSandbox
    assert registry.get_backend("docker") is DockerSandbox
    entries = {e.name: e for e in registry.backends()}
    assert entries["local"].source == "builtin" and entries["local"].ignored is None


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(UnknownBackendError) as err:
        registry.get_backend("nope")
    assert "local" in err.value.one_line() and "docker" in err.value.one_line()


def test_an_installed_distribution_adds_a_backend(fake_dist: Path) -> None:
    assert "fake" in registry.available_backends()
    cls = registry.get_backend("fake")
    assert cls.__name__ == "FakeSandbox" and issubclass(cls, LocalSandbox)
    entries = [e for e in registry.backends() if e.source == "entry point (fakebackend)"]
    assert {e.name for e in entries} == set(ENTRIES)


def test_an_entry_point_cannot_shadow_a_builtin(fake_dist: Path) -> None:
    shadow = [e for e in registry.backends() if e.name == "docker" and e.source != "builtin"]
    assert shadow and shadow[0].ignored == "shadows a built-in backend"
    assert registry.get_backend("docker") is DockerSandbox


def test_broken_entry_points_say_what_is_wrong(fake_dist: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"broken.*fakebackend.*ModuleNotFoundError"):
        registry.get_backend("broken")
    with pytest.raises(BackendUnavailableError, match="not a hazmat Sandbox class"):
        registry.get_backend("notasandbox")


def test_register_backend_in_process() -> None:
    class Mine(LocalSandbox):
        backend = "mine-test"

    registry.register_backend("mine-test", Mine)
    try:
        assert registry.get_backend("mine-test") is Mine
        assert registry.create_sandbox("mine-test", SandboxSpec()).backend == "mine-test"
        entry = next(e for e in registry.backends() if e.name == "mine-test")
        assert entry.source == "registered" and entry.target.endswith("Mine")
    finally:
        registry._registered.pop("mine-test", None)
        registry._loaded.pop("mine-test", None)
    assert "mine-test" not in registry.available_backends()


@pytest.mark.local
@pytest.mark.timeout(120)
def test_doctor_lists_and_probes_what_is_registered(tmp_path: Path) -> None:
    """``hazmat doctor --json`` in a fresh process that sees the fake distribution."""
    root = install_fake(tmp_path, {"fake": "fakebackend:FakeSandbox", "docker": "x:Y"})
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.getcwd()}"}
    proc = subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 1  # the shadowing entry point is a backend that is not ok
    registered = {(e["name"], e["source"]) for e in report["registered"]}
    assert {
        ("local", "builtin"),
        ("docker", "builtin"),
        ("fake", "entry point (fakebackend)"),
    } <= registered
    fake = report["backends"]["fake"]
    assert fake["ok"] and fake["source"] == "entry point (fakebackend)", fake
    assert "fakebackend:FakeSandbox" in fake["detail"]
    shadow = report["backends"]["docker (entry point (fakebackend))"]
    assert not shadow["ok"] and "shadows a built-in" in shadow["detail"]
    text = subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "doctor"],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
    ).stdout
    assert "backend fake" in text
