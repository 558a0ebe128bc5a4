"""vSphere tags from the vAPI REST endpoint of each vCenter, refreshed on a schedule.

Tags are not in the vSphere Web Services (SOAP) API: they live in the vAPI tagging service
(``/rest/com/vmware/cis/tagging/...``, vSphere 6.5+).  Nothing notifies on a tag change, and
tags rarely change, so a background thread re-reads them every ``refresh_seconds`` (default
5 min) and publishes an immutable :class:`TagSnapshot` on the vCenter's :class:`Inventory`;
the ``tags`` collector only reads that snapshot, so a scrape never waits on the REST API.

One refresh costs 1 + 2 x categories + tags requests plus one
``list-attached-objects-on-tags`` per 100 tags, at most 8 in flight.  A vCenter without the
endpoint (404) is logged once and reported through ``vsphere_scrape_collector_success``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from exporter.collectors_config import TagsConfig
from vcenter.config import VCenterConfig
from vcenter.vapi import SESSION_HEADER, VapiClient, VapiError, rest_base

from .inventory import Inventory

__all__ = ["SESSION_HEADER", "VapiClient", "VapiError", "rest_base"]  # now in vcenter.vapi

log = logging.getLogger(__name__)
BATCH_TAGS = 100  # tag ids per list-attached-objects-on-tags request


@dataclass(frozen=True)
class TagSnapshot:
    """What one refresh found: moid -> ((category, tag), ...), and how the refresh went.

    ``ok`` False with ``attachments`` from an earlier refresh means: stale but served (tags
    rarely change), and the collector reports the failure.
    """

    ok: bool
    attachments: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    error: str = ""
    taken: float = 0.0


async def read_tags(client: VapiClient, allowed: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Every allowed category's tags and the objects they are attached to, batched."""
    cis = "/com/vmware/cis/tagging"
    category_ids = await client.call("GET", f"{cis}/category") or []
    categories = await asyncio.gather(
        *(client.call("GET", f"{cis}/category/id:{cid}") for cid in category_ids)
    )
    wanted = [c for c in categories if c and (not allowed or c.get("name") in allowed)]
    tag_lists = await asyncio.gather(
        *(
            client.call("POST", f"{cis}/tag/id:{c['id']}?~action=list-tags-for-category")
            for c in wanted
        )
    )
    tag_ids = [tid for ids in tag_lists for tid in ids or []]
    tags = await asyncio.gather(*(client.call("GET", f"{cis}/tag/id:{tid}") for tid in tag_ids))
    category_name = {c["id"]: str(c.get("name", "")) for c in wanted}
    tag_name = {
        t["id"]: (category_name.get(t.get("category_id"), ""), str(t.get("name", "")))
        for t in tags
        if t
    }
    batches = [tag_ids[i : i + BATCH_TAGS] for i in range(0, len(tag_ids), BATCH_TAGS)]
    answers = await asyncio.gather(
        *(
            client.call(
                "POST",
                f"{cis}/tag-association?~action=list-attached-objects-on-tags",
                {"tag_ids": batch},
            )
            for batch in batches
        )
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for answer in answers:
        for entry in answer or []:
            pair = tag_name.get(entry.get("tag_id"))
            if pair is None:
                continue
            for obj in entry.get("object_ids") or []:
                out.setdefault(str(obj.get("id")), []).append(pair)
    return out


class TagSource:
    """One thread with its own event loop refreshing every vCenter's tags."""

    def __init__(
        self,
        vcenters: Sequence[VCenterConfig],
        inventories: Sequence[Inventory],
        config: TagsConfig,
    ) -> None:
        self.vcenters = list(vcenters)
        self.inventories = list(inventories)
        self.config = config
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._reported: dict[str, str] = {}  # vcenter -> last logged error kind

    def start(self) -> None:
        if not self.config.enabled or not self.vcenters:
            return
        self._thread = threading.Thread(target=self._run, name="vha-tags", daemon=True)
        self._thread.start()
        self._started.wait(5)

    def stop(self, timeout: float = 2.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            clients = [VapiClient(vc, http) for vc in self.vcenters]
            try:
                await asyncio.gather(
                    *(
                        self._follow(c, inv)
                        for c, inv in zip(clients, self.inventories, strict=True)
                    )
                )
            finally:
                await asyncio.gather(*(c.logout() for c in clients))

    async def _follow(self, client: VapiClient, inv: Inventory) -> None:
        assert self._stop is not None
        retry = min(30.0, self.config.refresh_seconds)
        while not self._stop.is_set():
            wait = self.config.refresh_seconds
            try:
                found = await read_tags(client, self.config.categories)
                snapshot = TagSnapshot(
                    ok=True,
                    attachments={k: tuple(v) for k, v in found.items()},
                    taken=time.time(),
                )
                if self._reported.pop(client.vc.name, None) is not None:
                    log.info("vcenter=%s vAPI tags readable again", client.vc.name)
                retry = min(30.0, self.config.refresh_seconds)
            except Exception as exc:  # noqa: BLE001 - any failure: report, keep the last tags
                kind = exc.kind if isinstance(exc, VapiError) else "connect"
                message = str(exc) or type(exc).__name__
                if self._reported.get(client.vc.name) != kind:
                    self._reported[client.vc.name] = kind
                    log.warning(
                        "vcenter=%s tags unavailable: %s (logged once; counted in "
                        'vsphere_scrape_collector_success{collector="tags"})',
                        client.vc.name,
                        message,
                    )
                previous = inv.tags
                snapshot = TagSnapshot(
                    ok=False,
                    attachments=previous.attachments if previous is not None else {},
                    error=message,
                    taken=time.time(),
                )
                if kind != "missing":
                    client.session = None
                wait, retry = retry, min(retry * 2, self.config.refresh_seconds)
            inv.tags = snapshot
            inv.touch()
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
            except TimeoutError:
                pass
