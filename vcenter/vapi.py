"""A vAPI REST session (``/rest/com/vmware/cis/...``), shared by both daemons.

vSphere tags live in the vAPI tagging service, not in the SOAP API.  The exporter reads
them (exporter/tagging.py); the remediator reads and re-attaches a re-registered VM's tags
(remediator/tags.py).  Both use this client: one logged-in session per vCenter, the same
user and password as the SOAP login, a fresh login once when the session expired (401).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp

from vcenter.config import VCenterConfig
from vcenter.session import ssl_context

SESSION_HEADER = "vmware-api-session-id"
PARALLEL = 8  # requests in flight per vCenter


class VapiError(Exception):
    """A vAPI failure with a one-line reason (``kind``: missing, auth, http, connect)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def rest_base(vc: VCenterConfig) -> str:
    """``https://vc:443/sdk`` -> ``https://vc:443/rest`` (the same host and port)."""
    scheme = "https" if vc.url.lower().startswith("https") else "http"
    host = f"[{vc.host}]" if ":" in vc.host else vc.host
    return f"{scheme}://{host}:{vc.port}/rest"


class VapiClient:
    """A logged-in vAPI session; logs in again once when the session expires (401)."""

    def __init__(self, vc: VCenterConfig, http: aiohttp.ClientSession) -> None:
        self.vc = vc
        self.http = http
        self.base = rest_base(vc)
        self.ssl: ssl.SSLContext | bool = ssl_context(vc) if self.base.startswith("https") else True
        self.session: str | None = None
        self.sem = asyncio.Semaphore(PARALLEL)

    async def login(self) -> None:
        auth = aiohttp.encode_basic_auth(self.vc.user, self.vc.password.get())
        url = f"{self.base}/com/vmware/cis/session"
        async with self.http.post(url, headers={"Authorization": auth}, ssl=self.ssl) as resp:
            if resp.status == 404:
                raise VapiError("missing", f"no vAPI REST endpoint at {url} (HTTP 404)")
            if resp.status in (401, 403):
                raise VapiError("auth", f"vAPI login refused (HTTP {resp.status})")
            if resp.status != 200:
                raise VapiError("http", f"vAPI login: HTTP {resp.status}")
            self.session = str((await resp.json(content_type=None))["value"])

    async def logout(self) -> None:
        if self.session is None:
            return
        headers = {SESSION_HEADER: self.session}
        try:
            async with self.http.delete(
                f"{self.base}/com/vmware/cis/session", headers=headers, ssl=self.ssl
            ):
                pass
        except (TimeoutError, aiohttp.ClientError):
            pass
        self.session = None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the ``value`` of the answer."""
        async with self.sem:
            for attempt in (0, 1):
                if self.session is None:
                    await self.login()
                headers = {SESSION_HEADER: self.session or ""}
                async with self.http.request(
                    method, f"{self.base}{path}", json=body, headers=headers, ssl=self.ssl
                ) as resp:
                    if resp.status == 401 and attempt == 0:
                        self.session = None  # expired: log in once more
                        continue
                    if resp.status != 200:
                        raise VapiError("http", f"{method} {path}: HTTP {resp.status}")
                    data = await resp.json(content_type=None)
                    return data.get("value") if isinstance(data, dict) else None
        raise VapiError("auth", "vAPI session refused after a fresh login")
