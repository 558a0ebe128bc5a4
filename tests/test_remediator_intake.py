"""Intake hardening (issue 9, item 8): every bad input a 4xx with a reason, never a 500.

Each case here answered 500 with a traceback before: lone surrogates (SQLite cannot bind
them), timestamps whose UTC conversion overflows, JSON nested too deep or with integers
too long for Python to parse, a non-ASCII ``Authorization`` header, an action id SQLite
cannot hold.  Moids are checked at intake because pyVmomi writes them into the SOAP body
unescaped.  Slow clients are cut off by the header and body read timeouts, and a stalled
request does not hold up a shutdown.  All against the real aiohttp app and real sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from remediator.app import create_app, serve
from remediator.config import parse_remediator_config
from vcenter.moid import MOID_RE, valid_moid

from .remediator_fixtures import (
    AUTH,
    TOKEN,
    alert,
    dead_config,
    payload,
)


async def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are (no client library fixing them up); the raw answer back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def post(body: bytes, auth: bytes = b"Bearer " + TOKEN.encode()) -> bytes:
    return (
        b"POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + auth + b"\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def test_moid_validator() -> None:
    for good in ("host-21", "vm-1234", "domain-c7", "datastore-11", "group-v3", "resgroup-8",
                 "vm.1", "a:b_c-d"):  # fmt: skip
        assert valid_moid(good), good
    for bad in ("", "host-21</_this><x>", "vm 1", "vm-1\n", "vm-\u00e9", "x" * 300, "a/b"):
        assert not valid_moid(bad), bad
    assert MOID_RE.pattern.startswith("^")


async def test_every_bad_input_is_a_4xx_with_a_reason(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(dead_config(tmp_path)))
    port = client.server.port
    good = payload(alert("restart_host_vms", host_id="host-21", cluster="c1"))

    def with_alert(**change: Any) -> bytes:
        a = alert("restart_host_vms", host_id="host-21", cluster="c1")
        labels = change.pop("labels", {})
        a["labels"].update(labels)
        a.update(change)
        return json.dumps(payload(a)).encode()  # ensure_ascii: surrogates become \udXXX

    bodies = {
        "surrogate label": with_alert(labels={"host": "\ud800"}),
        "surrogate label name": with_alert(labels={"\udfff": "x"}),
        "surrogate fingerprint": with_alert(fingerprint="ab\ud800"),
        "startsAt year 1 east of UTC": with_alert(startsAt="0001-01-01T00:00:00+01:00"),
        "startsAt year 9999 west of UTC": with_alert(startsAt="9999-12-31T23:59:59-01:00"),
        "endsAt year 1 east of UTC": with_alert(endsAt="0001-01-01T00:30:00+05:00"),
        "nested arrays": b'{"version": "4", "alerts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "5000-digit integer": b'{"version": "4", "alerts": [], "x": ' + b"9" * 5000 + b"}",
        "host_id with XML": with_alert(labels={"host_id": "host-21</_this><x>"}),
        "vm_id with a space": with_alert(labels={"remediation": "restart_vm", "vm_id": "vm 1"}),
        "megabyte label": with_alert(labels={"host": "x" * (1 << 20)}),
    }
    wrong: dict[str, Any] = {}
    for name, body in bodies.items():
        answer = await raw_request(port, post(body))
        if status_of(answer) != 400:
            wrong[name] = status_of(answer)
            continue
        error = json.loads(answer.split(b"\r\n\r\n", 1)[1].decode())["error"]
        assert "Traceback" not in error and len(error) < 400, (name, error)

    for auth in ("Bearer t\u00e9st".encode(), "Basic \u00e9\u00e9".encode(), b"Bearer \xff\xfe"):
        answer = await raw_request(port, post(json.dumps(good).encode(), auth=auth))
        if status_of(answer) != 401:
            wrong[f"Authorization {auth!r}"] = status_of(answer)

    get = "GET /api/v1/actions/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n" \
          "Connection: close\r\n\r\n"  # fmt: skip
    for huge in ("9" * 30, str(1 << 63), "9" * 5000, "-1"):
        answer = await raw_request(port, get.format(huge, TOKEN).encode())
        if status_of(answer) not in (400, 404):
            wrong[f"action id {huge[:20]}"] = status_of(answer)
    assert not wrong, json.dumps(wrong)

    resp = await client.post("/api/v1/alerts", json=good, headers=AUTH)
    assert resp.status == 200, await resp.text()


async def test_labels_are_escaped_in_logs(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # vCenter is unreachable: the action is held, then refused after a second, and the
    # refusal is logged with the VM's name from the alert.
    client = await aiohttp_client(create_app(dead_config(tmp_path, guard={"max_hold_seconds": 1})))
    caplog.set_level(logging.INFO, logger="remediator")
    forged = "vm-1\n2026-01-01 00:00:00 ERROR remediator: FORGED\x00" + "y" * 4000
    a = alert("restart_vm", vm_id="vm-1", vm=forged)
    resp = await client.post("/api/v1/alerts", json=payload(a), headers=AUTH)
    assert resp.status == 200
    for _ in range(100):
        await asyncio.sleep(0.1)
        logged = [r for r in caplog.records if r.name.startswith("remediator")]
        if any("FORGED" in r.getMessage() for r in logged):
            break
    else:
        pytest.fail("the VM's name was never logged")
    for record in logged:
        line = record.getMessage()
        assert "\n" not in line and "\x00" not in line, line[:200]
        assert len(line) <= 4096, len(line)


async def wait_listening(port: int) -> None:
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    pytest.fail("the remediator never listened")


async def test_slow_clients_are_cut_off_and_do_not_hold_shutdown(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    cfg = dead_config(
        tmp_path,
        listen=f"127.0.0.1:{unused_tcp_port}",
        header_timeout_seconds=1,
        body_timeout_seconds=1,
    )
    stop = asyncio.Event()
    server = asyncio.create_task(serve(cfg, parse_remediator_config(cfg), stop))
    await wait_listening(unused_tcp_port)
    n = 30

    async def slow(headers_done: bool) -> float:
        """Seconds until the server hung up on a client that never finishes."""
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        try:
            if headers_done:  # authenticated, declares 1000 bytes, sends 10
                writer.write(post(b"x" * 1000)[:-990])
            else:
                writer.write(b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            while True:
                chunk = await asyncio.wait_for(reader.read(4096), 30)
                if not chunk:
                    return time.monotonic() - t0
        finally:
            writer.close()

    try:
        held = await asyncio.gather(*(slow(i % 2 == 0) for i in range(n)))
        # 1 s to headers or body, then at most 1 s of lingering after the 408.
        assert max(held) < 3.5, sorted(held)
        # A stalled half-request when SIGTERM comes: the server still stops quickly.
        _, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        writer.write(post(b"x" * 1000)[:-990])
        await writer.drain()
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        stop.set()
        await asyncio.wait_for(server, 30)
        assert time.monotonic() - t0 < 4
        writer.close()
    finally:
        stop.set()
        if not server.done():
            server.cancel()


async def test_malformed_requests_log_one_line_not_a_traceback(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp refuses a request line with raw non-ASCII bytes (400) and logs it with a
    traceback; anyone could fill the log with those, so it becomes one escaped line."""
    client = await aiohttp_client(create_app(dead_config(tmp_path)))
    caplog.set_level(logging.DEBUG)
    bad = b"GET /api/v1/actions?vm=\x80\n HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for _ in range(3):
        answer = await raw_request(client.server.port, bad)
        assert status_of(answer) == 400, answer[:200]
    records = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert records
    for record in records:
        assert record.exc_info is None, record.getMessage()
        assert "\n" not in record.getMessage()
