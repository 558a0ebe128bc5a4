"""A re-registered VM's vSphere tags: read before it leaves the inventory, attached after.

Tags are not in the SOAP API: they live in the vAPI tagging service, keyed by the VM's
managed-object id, so a VM registered again (a new moid) has none.  Before unregistering,
the step reads the tag ids attached to the VM (``tag-association?~action=list-attached-
tags``); after registering, it attaches them to the new object in one call
(``tag-association?~action=attach-multiple-tags-to-object``: "If a tag is already attached
to the object, then the individual operation is a no-op", so a repeat is harmless; it needs
"the read privilege on the object and the attach tag privilege on each tag").

The vAPI session code is :mod:`vcenter.vapi` (shared with the exporter's tag collector).
One aiohttp session and one logged-in :class:`~vcenter.vapi.VapiClient` per vCenter, made
on first use in the engine's event loop and closed when the engine stops.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from vcenter.config import VCenterConfig
from vcenter.vapi import VapiClient, VapiError

ASSOC = "/com/vmware/cis/tagging/tag-association"
TIMEOUT_SECONDS = 30.0


def _object(vm_id: str) -> dict[str, str]:
    return {"type": "VirtualMachine", "id": vm_id}


class Tags:
    """The remediator's vAPI clients, one per vCenter."""

    def __init__(self, vcenters: list[VCenterConfig]) -> None:
        self.vcenters = {vc.name: vc for vc in vcenters}
        self._http: aiohttp.ClientSession | None = None
        self._clients: dict[str, VapiClient] = {}

    def _client(self, vcenter: str) -> VapiClient:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        if vcenter not in self._clients:
            self._clients[vcenter] = VapiClient(self.vcenters[vcenter], self._http)
        return self._clients[vcenter]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.logout()
        self._clients.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def attached(self, vcenter: str, vm_id: str) -> list[str]:
        """The ids of the tags attached to ``vm_id``."""
        found = await self._client(vcenter).call(
            "POST", f"{ASSOC}?~action=list-attached-tags", {"object_id": _object(vm_id)}
        )
        return sorted(str(t) for t in found or [])

    async def attach(self, vcenter: str, vm_id: str, tag_ids: list[str]) -> list[str]:
        """Attach ``tag_ids`` to ``vm_id``; returns what could not be attached."""
        if not tag_ids:
            return []
        result: Any = await self._client(vcenter).call(
            "POST",
            f"{ASSOC}?~action=attach-multiple-tags-to-object",
            {"object_id": _object(vm_id), "tag_ids": list(tag_ids)},
        )
        if isinstance(result, dict) and not result.get("success", True):
            messages = [
                str(m.get("default_message") or m.get("message") or m)
                for m in result.get("error_messages") or []
                if isinstance(m, dict)
            ]
            return [f"tags: {m}" for m in messages] or ["tags: attach refused"]
        return []


def describe_error(exc: BaseException) -> str:
    """One line for a failed vAPI call (HTTP 403 is a missing privilege)."""
    if isinstance(exc, VapiError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
