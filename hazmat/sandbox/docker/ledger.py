"""Remove Docker leftovers of hazmat: containers, networks, volumes and episode images.

Everything the Docker backend makes carries the label ``hazmat=1`` (plus
``hazmat.run`` / ``hazmat.episode``), so leftovers of a crashed or killed run are
found by label. ``hazmat cleanup`` calls :func:`cleanup`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog

from hazmat.sandbox.docker.image import docker_client

__all__ = ["cleanup"]

log = structlog.get_logger("hazmat.sandbox.docker.ledger")


def cleanup(run_id: str | None = None, *, client: Any | None = None) -> dict[str, int]:
    """Remove every container, network and volume labelled ``hazmat=1``.

    With ``run_id`` only those of that run (label ``hazmat.run``). Per-episode images
    (``hazmat-episode:*``, committed when files are placed under a read-only root) are
    removed too; the sandbox and service images are kept.

    Returns counts: ``{"containers": n, "networks": n, "volumes": n, "images": n}``.

    Raises:
        BackendUnavailableError: the Docker daemon cannot be reached.
    """
    import docker.errors

    client = client or docker_client()
    api = client.api
    labels = ["hazmat=1"] + ([f"hazmat.run={run_id}"] if run_id else [])
    flt = {"label": labels}
    counts = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
    gone = (docker.errors.NotFound, docker.errors.APIError)
    for c in api.containers(all=True, filters=flt):
        with contextlib.suppress(*gone):
            api.remove_container(c["Id"], force=True, v=True)
            counts["containers"] += 1
    for n in api.networks(filters=flt):
        with contextlib.suppress(*gone):
            api.remove_network(n["Id"])
            counts["networks"] += 1
    for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
        with contextlib.suppress(*gone):
            api.remove_volume(v["Name"], force=True)
            counts["volumes"] += 1
    for image in api.images(filters=flt):
        if not any(tag.startswith("hazmat-episode:") for tag in image.get("RepoTags") or []):
            continue
        with contextlib.suppress(*gone):
            api.remove_image(image["Id"], force=True)
            counts["images"] += 1
    log.info("cleanup", run=run_id, **counts)
    return counts
