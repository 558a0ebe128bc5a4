"""vCenter sessions shared by the exporter and the remediator.

pyvmomi is blocking; callers run these functions in a worker thread, never on the event loop.
Faults are classified into a small set of reasons so metrics and logs can say *why* a
vCenter is unreachable without leaking credentials.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from typing import Any
from urllib.error import URLError

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from .config import VCenterConfig

# A keep-alive connection idle this long is closed and a fresh one opened for the next call.
# Servers close idle client connections (vCenter's reverse proxy; the simulator after 30 s,
# as Go 1.19's net/http does), and reusing one they closed fails that call with
# SSLEOFError: the exporter's pollers then failed a whole round and reconnected. A new TLS
# connection costs a handshake; a failed poll costs a round of data.
IDLE_REUSE_SECONDS = 10.0


def ssl_context(vc: VCenterConfig) -> ssl.SSLContext:
    """Verification on unless the config turns it off for this vCenter."""
    if not vc.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=vc.ca_file)


def connect(vc: VCenterConfig, *, timeout: float | None = None) -> vim.ServiceInstance:
    """Log in and return the service instance; raises on any failure (see :func:`classify`).

    pyVmomi's API-version probe has no socket timeout, so a vCenter that accepts the TCP
    connection and never answers would hang the caller forever; the login runs in a helper
    thread and the caller gets a ``TimeoutError`` after the configured timeout instead.
    """
    seconds = timeout if timeout is not None else vc.timeout_seconds
    parsed_scheme = "https" if vc.url.lower().startswith("https") else "http"
    outcome: dict[str, Any] = {}

    def login() -> None:
        try:
            outcome["si"] = SmartConnect(
                protocol=parsed_scheme,
                host=vc.host,
                port=vc.port,
                path=vc.path,
                user=vc.user,
                pwd=vc.password.get(),
                sslContext=ssl_context(vc) if parsed_scheme == "https" else None,
                httpConnectionTimeout=seconds,
                connectionPoolTimeout=IDLE_REUSE_SECONDS,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=login, name=f"vha-login-{vc.name}", daemon=True)
    worker.start()
    worker.join(min(seconds, vc.timeout_seconds) + 5.0)
    if worker.is_alive():
        raise TimeoutError(f"no answer from {vc.url} within {seconds:.0f}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["si"]


def disconnect(si: vim.ServiceInstance | None) -> None:
    """Log out, ignoring errors: the session may already be gone."""
    if si is None:
        return
    try:
        Disconnect(si)
    except Exception:  # noqa: BLE001 - best effort on a session that may be dead
        pass


def classify(exc: BaseException) -> str:
    """A short, stable reason for a failure, used as a metric label and in logs."""
    if isinstance(
        exc, vim.fault.InvalidLogin | vim.fault.NoPermission | vim.fault.NotAuthenticated
    ):
        return "auth"
    if isinstance(exc, vmodl.fault.ManagedObjectNotFound):
        return "fault"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timeout"
    if isinstance(
        exc,
        ConnectionError
        | socket.gaierror
        | ssl.SSLError
        | URLError
        | http.client.HTTPException
        | OSError,
    ):
        return "connect"
    if isinstance(exc, vmodl.MethodFault):
        return "fault"
    return "other"


def describe(exc: BaseException) -> str:
    """A one-line human description of a pyvmomi or socket failure."""
    msg = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
    name = type(exc).__name__
    if isinstance(exc, vmodl.MethodFault):
        name = exc._wsdlName  # noqa: SLF001 - the vSphere fault name admins know
    first_line = str(msg).strip().splitlines()[0] if str(msg).strip() else name
    text = f"{name}: {first_line}" if not first_line.startswith(name) else first_line
    if isinstance(exc, vim.fault.NoPermission) and not isinstance(exc, vim.fault.NotAuthenticated):
        # which privilege on which object: what the vCenter admin must grant
        privilege = getattr(exc, "privilegeId", "") or "?"
        obj = getattr(getattr(exc, "object", None), "_moId", "") or "?"
        text += f" (the account lacks {privilege} on {obj})"
    return text
