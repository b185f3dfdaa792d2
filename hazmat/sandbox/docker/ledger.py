"""What the Docker backend made, and how it is removed.

Every container, network, volume and per-episode image a sandbox makes is written in
its :class:`Ledger` the moment the daemon returns its id, and carries the labels
``hazmat=1``, ``hazmat.run``, ``hazmat.episode`` and ``hazmat.sandbox``. ``stop()``
removes what the ledger lists, then anything else with the sandbox's label (a
creation the daemon finished after a cancellation). A ledger that is still open when
the process exits (``sys.exit`` in the middle of a run) is removed by an ``atexit``
hook; a process killed outright leaves its objects to :func:`cleanup` (``hazmat
cleanup --run``, and ``hazmat run --resume`` for the run it resumes), which finds them
by label.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Any

import structlog

from hazmat.sandbox.docker.image import docker_client

__all__ = ["Ledger", "cleanup"]

log = structlog.get_logger("hazmat.sandbox.docker")


class Ledger:
    """The ids one sandbox made in the daemon (see the module docstring).

    The lists are appended to as objects are made (``made=ledger.containers`` is how
    helpers record what they create); :meth:`remove_all` empties them.
    """

    def __init__(self, sandbox_id: str) -> None:
        self.sandbox_id = sandbox_id
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.volumes: list[str] = []
        self.images: list[str] = []
        self._made_images: list[str] = []
        self._api: Any = None

    def open(self, api: Any) -> None:
        """Start tracking: from now on an exiting process removes what is listed."""
        self._api = api
        with _LIVE_LOCK:
            _LIVE[self.sandbox_id] = self

    def close(self) -> None:
        """Stop tracking (the objects were removed, or handed over: a detached sandbox)."""
        with _LIVE_LOCK:
            _LIVE.pop(self.sandbox_id, None)

    def remove_all(self) -> None:
        """Remove what is listed, then anything else labelled with this sandbox.

        Never raises for things already gone.
        """
        import docker.errors

        api = self._api
        if api is None:
            return
        gone = (docker.errors.NotFound, docker.errors.APIError)
        flt = {"label": [f"hazmat.sandbox={self.sandbox_id}"]}
        with contextlib.suppress(Exception):
            for c in api.containers(all=True, filters=flt):
                if c["Id"] not in self.containers:
                    self.containers.append(c["Id"])
        for cid in self.containers:
            with contextlib.suppress(*gone):
                api.remove_container(cid, force=True, v=True)
        self.containers.clear()
        with contextlib.suppress(Exception):
            for n in api.networks(filters=flt):
                if n["Id"] not in self.networks:
                    self.networks.append(n["Id"])
        for nid in self.networks:
            with contextlib.suppress(*gone):
                api.remove_network(nid)
        self.networks.clear()
        with contextlib.suppress(Exception):
            for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
                if v["Name"] not in self.volumes:
                    self.volumes.append(v["Name"])
        for name in self.volumes:
            with contextlib.suppress(*gone):
                api.remove_volume(name, force=True)
        self.volumes.clear()
        for image_id in self.images:
            with contextlib.suppress(*gone):
                api.remove_image(image_id, force=True)
        self._made_images += self.images
        self.images.clear()

    def leftovers(self) -> list[str]:
        """What the daemon still has of this sandbox: labelled containers, networks and
        volumes, and the images the ledger made (one line each)."""
        import docker.errors

        api = self._api
        if api is None:
            return []
        flt = {"label": [f"hazmat.sandbox={self.sandbox_id}"]}
        out = [f"container {c['Id'][:12]}" for c in api.containers(all=True, filters=flt)]
        out += [f"network {n['Name']}" for n in api.networks(filters=flt)]
        out += [
            f"volume {v['Name']}" for v in (api.volumes(filters=flt) or {}).get("Volumes") or []
        ]
        for image in self._made_images:
            with contextlib.suppress(docker.errors.NotFound):
                api.inspect_image(image)
                out.append(f"image {image[:19]}")
        return out


_LIVE: dict[str, Ledger] = {}
_LIVE_LOCK = threading.Lock()


def _remove_open_at_exit() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for ledger in live:
        with contextlib.suppress(Exception):
            ledger.remove_all()


atexit.register(_remove_open_at_exit)


def cleanup(
    run_id: str | None = None, *, client: Any | None = None, keep: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Remove every container, network and volume labelled ``hazmat=1``.

    With ``run_id`` only those of that run (label ``hazmat.run``). Per-episode images
    (``hazmat-episode:*``, committed when files are placed under a read-only root) are
    removed too; the sandbox and service images are kept. A sandbox one of whose
    containers' ids starts with one in ``keep`` (a halted sandbox kept for inspection)
    is left whole: everything labelled with its ``hazmat.sandbox``.

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
    containers = api.containers(all=True, filters=flt)
    kept = {
        (c.get("Labels") or {}).get("hazmat.sandbox")
        for c in containers
        if any(c["Id"].startswith(k) for k in keep if k)
    } - {None}

    def spared(labels: dict[str, str] | None) -> bool:
        return (labels or {}).get("hazmat.sandbox") in kept

    for c in containers:
        if spared(c.get("Labels")):
            continue
        with contextlib.suppress(*gone):
            api.remove_container(c["Id"], force=True, v=True)
            counts["containers"] += 1
    for n in api.networks(filters=flt):
        if spared(n.get("Labels")):
            continue
        with contextlib.suppress(*gone):
            api.remove_network(n["Id"])
            counts["networks"] += 1
    for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
        if spared(v.get("Labels")):
            continue
        with contextlib.suppress(*gone):
            api.remove_volume(v["Name"], force=True)
            counts["volumes"] += 1
    for image in api.images(filters=flt):
        if not any(tag.startswith("hazmat-episode:") for tag in image.get("RepoTags") or []):
            continue
        if spared(image.get("Labels")):
            continue
        with contextlib.suppress(*gone):
            api.remove_image(image["Id"], force=True)
            counts["images"] += 1
    log.info("cleanup", run=run_id, **counts)
    return counts
