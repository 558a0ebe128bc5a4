"""A keep-alive connection the server closed while it idled is never reused.

Servers close idle keep-alive connections: the simulator after ``-idle-timeout`` (30 s by
default, what Go 1.19's net/http did at its ReadHeaderTimeout), vCenter's reverse proxy
after its own. A client that reuses such a connection gets ``SSLEOFError`` on its next
call; the exporter's pollers then failed every read of the round and reconnected (seen at
40,000 VMs, where a poll keeps one connection idle while another answers for longer).
Both of the exporter's clients, pyVmomi's pool and the plain-XML ``SoapSession``, open a
fresh connection instead once one has idled ``session.IDLE_REUSE_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from exporter.perf_soap import SoapSession
from sim.harness import Simulator
from tests.exporter_fixtures import exporter_config, sim_vcenter
from vcenter import session

SERVER_IDLE = 1.0  # the simulator's -idle-timeout in these tests, seconds


@pytest.fixture
def idle_sim(sim_factory: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch) -> Simulator:
    monkeypatch.setattr(session, "IDLE_REUSE_SECONDS", SERVER_IDLE / 2)
    return sim_factory(extra_args=[f"-idle-timeout={SERVER_IDLE}s"])


def _vcenter(sim: Simulator) -> Any:
    return exporter_config(sim_vcenter(sim)).vcenters[0]


def test_pyvmomi_session_outlives_the_servers_idle_close(idle_sim: Simulator) -> None:
    si = session.connect(_vcenter(idle_sim))
    try:
        first = si.CurrentTime()
        time.sleep(SERVER_IDLE * 1.5)  # the simulator has closed the pooled connection
        assert si.CurrentTime() >= first
    finally:
        session.disconnect(si)


def _current_time(si: Any, vc: Any) -> tuple[SoapSession, bytes]:
    """A plain-XML session on ``si`` and the request of ``CurrentTime`` as pyVmomi sends it."""
    body = si._stub.SerializeRequest(si, si._GetMethodInfo("CurrentTime"), [])  # noqa: SLF001
    return SoapSession.for_vcenter(si, vc), body


def test_soap_session_outlives_the_servers_idle_close(idle_sim: Simulator) -> None:
    vc = _vcenter(idle_sim)
    si = session.connect(vc)
    try:
        soap, body = _current_time(si, vc)
        assert b"CurrentTimeResponse" in soap.post(body)
        time.sleep(SERVER_IDLE * 1.5)
        assert b"CurrentTimeResponse" in soap.post(body)
        soap.close()
    finally:
        session.disconnect(si)


def test_a_busy_connection_is_kept(idle_sim: Simulator) -> None:
    """Calls closer together than the bound share one connection (no handshake per call)."""
    vc = _vcenter(idle_sim)
    si = session.connect(vc)
    try:
        soap, body = _current_time(si, vc)
        soap.post(body)
        first = soap._local.conn  # noqa: SLF001
        soap.post(body)
        assert soap._local.conn is first  # noqa: SLF001
        soap.close()
    finally:
        session.disconnect(si)
