"""Removing a run's Docker leftovers by label, sparing a sandbox kept on purpose."""

from __future__ import annotations

import uuid

import pytest

from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.docker import DockerSandbox
from hazmat.sandbox.docker.ledger import cleanup

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.timeout(120)]


def _of_sandbox(sandbox_id: str) -> list[str]:
    import docker

    api = docker.from_env(timeout=30).api
    flt = {"label": [f"hazmat.sandbox={sandbox_id}"]}
    out = [f"container {c['Id'][:12]}" for c in api.containers(all=True, filters=flt)]
    out += [f"network {n['Name']}" for n in api.networks(filters=flt)]
    out += [f"volume {v['Name']}" for v in (api.volumes(filters=flt) or {}).get("Volumes") or []]
    out += [f"image {i['Id'][:19]}" for i in api.images(filters=flt)]
    return sorted(out)  # the daemon lists volumes in no fixed order


async def test_cleanup_of_a_run_spares_kept_sandboxes(sandbox_image: str) -> None:
    run_id = f"test-ledger-{uuid.uuid4().hex[:8]}"
    # network, a committed episode image (a file outside the writable dirs), volumes
    spec = SandboxSpec(network="internal", sentinel=False, files={"/opt/x.txt": "x"})
    kept, lost = (DockerSandbox(spec, run_id=run_id, episode_id=e) for e in ("kept", "lost"))
    try:
        for sb in (kept, lost):
            await sb.start()
        box = await kept.detach()  # as --keep-on-halt does
        await lost.detach()  # as a killed process leaves it
        kinds = {line.split()[0] for line in _of_sandbox(lost.sandbox_id)}
        assert kinds == {"container", "network", "volume", "image"}
        kept_before = _of_sandbox(kept.sandbox_id)
        counts = cleanup(run_id, keep=frozenset({box[:12]}))
        assert _of_sandbox(lost.sandbox_id) == []
        assert _of_sandbox(kept.sandbox_id) == kept_before
        assert counts["containers"] == 1 and counts["images"] == 1
    finally:
        cleanup(run_id)
    assert _of_sandbox(kept.sandbox_id) == []
