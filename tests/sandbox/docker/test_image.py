"""The sandbox image: content hash, idempotent builds, status, service images (real daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmat.errors import ImageError
from hazmat.sandbox.docker import image as img

pytestmark = [pytest.mark.timeout(300)]


def test_content_hash_covers_dockerfile_and_supervisor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = img.content_hash()
    assert len(before) == 16 and before == img.content_hash()
    changed = tmp_path / "Dockerfile"
    changed.write_bytes(img.dockerfile_path().read_bytes() + b"\n# changed\n")
    monkeypatch.setenv("HAZMAT_DOCKERFILE", str(changed))
    assert img.content_hash() != before


def test_dockerfile_is_offline_and_has_the_tools() -> None:
    text = img.dockerfile_path().read_text()
    assert "ARG BASE=hazmat-base:bookworm" in text and "FROM ${BASE}" in text
    for tool in (
        "bash",
        "coreutils",
        "findutils",
        "python3",
        "procps",
        "curl",
        "netcat-openbsd",
        "iproute2",
        "git",
        "file",
        "less",
    ):
        assert tool in text
    assert "--uid 1000" in text and "/opt/hazmat/supervisor.py" in text


def test_apt_mirror_from_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAZMAT_DEBIAN_MIRROR", "http://mirror.example/debian")
    assert img.apt_mirror() == "http://mirror.example/debian"
    monkeypatch.delenv("HAZMAT_DEBIAN_MIRROR")
    assert img.apt_mirror().startswith("http")


@pytest.mark.docker
def test_build_is_idempotent_and_status_current() -> None:
    first = img.build_image()
    second = img.build_image()
    assert second.built is False and second.id == first.id
    assert second.tag == f"hazmat-sandbox:{img.content_hash()}"
    status = img.image_status()
    assert status.present and status.current and status.id == first.id and status.base_present


@pytest.mark.docker
def test_image_has_agent_user_and_tools() -> None:
    import docker

    img.build_image()
    out = (
        docker.from_env()
        .containers.run(
            "hazmat-sandbox:latest",
            [
                "sh",
                "-c",
                "id; for t in bash python3 ps curl nc ip git file less find; do "
                "command -v $t >/dev/null || echo missing $t; done; "
                "cmp /opt/hazmat/supervisor.py /opt/hazmat/supervisor.py && echo sup",
            ],
            remove=True,
            network_mode="none",
            labels={"hazmat": "1", "hazmat.run": "test-image"},
        )
        .decode()
    )
    assert "uid=1000(agent)" in out and "missing" not in out and "sup" in out


@pytest.mark.docker
def test_missing_image_has_fix_hint() -> None:
    with pytest.raises(ImageError) as err:
        img.resolve_image(img.docker_client(), "hazmat-sandbox:no-such-tag")
    assert "run: hazmat image build" in err.value.one_line()


@pytest.mark.docker
def test_service_image_built_offline_and_cached(tmp_path: Path) -> None:
    img.build_image()
    (tmp_path / "Dockerfile").write_text(
        "ARG SANDBOX=hazmat-sandbox:latest\nFROM ${SANDBOX}\nCOPY app.txt /srv/app.txt\n"
    )
    (tmp_path / "app.txt").write_text("v1")
    tag = img.build_service_image(tmp_path)
    assert tag.startswith("hazmat-service:")
    assert img.build_service_image(tmp_path) == tag
    (tmp_path / "app.txt").write_text("v2")
    assert img.build_service_image(tmp_path) != tag
    with pytest.raises(ImageError):
        img.build_service_image(tmp_path / "nowhere")


@pytest.mark.docker
def test_bare_name_runs_this_trees_image_not_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hazmat trees on one daemon: ``hazmat-sandbox`` is this tree's build, whatever
    another tree tagged ``latest`` (the guest programs must match the host's)."""
    import secrets

    client = img.docker_client()
    base = client.images.get(img.BASE_IMAGE)
    own = f"test-{secrets.token_hex(4)}"
    assert base.tag(img.SANDBOX_REPO, own)
    try:
        monkeypatch.setattr(img, "content_hash", lambda: own)
        assert img.resolve_image(client, img.SANDBOX_REPO).id == base.id
        assert img.resolve_image(client, f"{img.SANDBOX_REPO}:latest").id != base.id
    finally:
        client.images.remove(f"{img.SANDBOX_REPO}:{own}", noprune=True)
    monkeypatch.setattr(img, "content_hash", lambda: "0" * 16)
    latest = client.images.get(f"{img.SANDBOX_REPO}:latest")
    assert img.resolve_image(client, img.SANDBOX_REPO).id == latest.id
