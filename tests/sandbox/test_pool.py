"""The warm pool: sandboxes of a Poolable backend come started; others start cold, and
the pool says once that the backend cannot pool (real sandboxes on both backends)."""

from __future__ import annotations

import uuid

import pytest
from structlog.testing import capture_logs

from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.pool import WarmPool

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


@pytest.mark.local
async def test_a_backend_that_cannot_pool_starts_cold_and_says_so() -> None:
    with capture_logs() as logs:
        async with WarmPool("local", 2, run_id="pool-test") as pool:
            await pool.warm([SandboxSpec()], wait=1.0)
            for i in range(2):
                sb, warm = await pool.acquire(SandboxSpec(), episode_id=f"e{i}")
                try:
                    assert not warm and (await sb.exec(["true"])).ok
                finally:
                    await sb.stop()
    assert (pool.hits, pool.misses) == (0, 2)
    said = [e for e in logs if e["event"] == "pool_unsupported"]
    assert len(said) == 1 and said[0]["why"] == "the local backend cannot pool sandboxes"


@pytest.mark.docker
async def test_docker_pool_hands_out_started_sandboxes(sandbox_image: str) -> None:
    run_id = f"test-{uuid.uuid4().hex[:10]}"
    spec = SandboxSpec(files={"/tmp/episode.txt": "mine"}, setup=["touch /tmp/set-up"])
    cold_only = SandboxSpec(files={"/etc/hazmat-task.conf": "x"})  # outside the volumes
    async with WarmPool("docker", 1, run_id=run_id) as pool:
        await pool.warm([spec], wait=60.0)
        sb, warm = await pool.acquire(spec, episode_id="e1")
        try:
            assert warm
            r = await sb.exec(["sh", "-c", "cat /tmp/episode.txt; test -e /tmp/set-up"])
            assert r.ok and r.stdout == b"mine", r
            assert sb.episode_id == "e1"
        finally:
            await sb.stop()
        sb, warm = await pool.acquire(cold_only, episode_id="e2")
        try:
            assert not warm
            assert (await sb.read_file("/etc/hazmat-task.conf")) == b"x"
        finally:
            await sb.stop()
    assert (pool.hits, pool.misses) == (1, 1)
    from hazmat.sandbox.docker.ledger import cleanup

    assert cleanup(run_id) == {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
