"""The protocol: optional features are declared by the backends and checked by name."""

from __future__ import annotations

import pytest

from hazmat.errors import SandboxError
from hazmat.sandbox import (
    Attachable,
    Detachable,
    Freezable,
    Poolable,
    SandboxSpec,
    get_backend,
    lacks,
    require,
)
from hazmat.sandbox.docker import DockerSandbox
from hazmat.sandbox.local import LocalSandbox


def test_each_backend_declares_what_it_can_do() -> None:
    assert get_backend("docker") is DockerSandbox
    for feature in (Poolable, Freezable, Detachable, Attachable):
        assert issubclass(DockerSandbox, feature), feature
    assert issubclass(LocalSandbox, Freezable)
    for feature in (Poolable, Detachable, Attachable):
        assert not issubclass(LocalSandbox, feature), feature


def test_a_missing_feature_is_named_with_the_backend() -> None:
    sb = LocalSandbox(SandboxSpec())
    assert lacks(sb, Detachable) == "the local backend cannot keep a sandbox after the run"
    with pytest.raises(SandboxError, match="the local backend cannot pool sandboxes"):
        require(sb, Poolable)
    assert require(sb, Freezable) is sb
    docker = DockerSandbox(SandboxSpec())
    assert require(docker, Detachable, "keep it") is docker


def test_poolable_specs() -> None:
    assert DockerSandbox.poolable(SandboxSpec(files={"/tmp/x": "1", "/home/agent/y": "2"}))
    assert not DockerSandbox.poolable(SandboxSpec(files={"/etc/x": "1"}))
    assert not DockerSandbox.poolable(SandboxSpec(services={"web": {"image": "x"}}))
