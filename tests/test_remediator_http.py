"""The webhook's edges: authentication, bad payloads, oversized bodies, TLS, a dead journal.

None of these needs a vCenter: the config points at a closed port, so the remediator also
shows that an unreachable vCenter never stops it from answering.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from remediator.app import ENGINE, create_app, serve
from remediator.config import parse_remediator_config

from .metrics_helpers import parse, value
from .remediator_fixtures import (
    AUTH,
    DEAD_VCENTER,
    alert,
    dead_config,
    payload,
    remediator_section,
    stack_config,
)


async def test_auth_schema_and_size_errors_and_the_service_keeps_serving(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(dead_config(tmp_path, max_body_bytes=4096)))
    good = json.dumps(payload(alert("restart_vm", vm_id="vm-1")))
    post = "/api/v1/alerts"
    cases = [
        ({}, good, 401),
        ({"Authorization": "Bearer wrong"}, good, 401),
        ({"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}, good, 401),
        (AUTH, "{not json", 400),
        (AUTH, json.dumps({"version": "4", "alerts": "nope"}), 400),
        (AUTH, json.dumps(payload({"status": "firing"})), 400),
        (AUTH, "x" * 5000, 413),
    ]
    for headers, body, status in cases:
        resp = await client.post(post, data=body, headers=headers)
        assert resp.status == status, (status, await resp.text())
        data = await resp.json()
        assert data["status"] == "error" and "Traceback" not in data["error"]
        if status == 401:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    reason = await (await client.post(post, data="{not json", headers=AUTH)).json()
    assert reason["error"].startswith("malformed JSON")

    async def chunks() -> Any:  # no Content-Length: the size is only known while reading
        for _ in range(10):
            yield b"y" * 1000

    resp = await client.post(post, data=chunks(), headers=AUTH)
    assert resp.status == 413
    resp = await client.post(post, data=good, headers=AUTH)
    assert resp.status == 200 and len((await resp.json())["created"]) == 1
    assert (await client.get("/healthz")).status == 200
    metrics = parse(await (await client.get("/metrics")).text())
    assert value(metrics, "vha_remediator_webhook_requests_total", code="401") == 3
    assert value(metrics, "vha_remediator_webhook_requests_total", code="400") == 4
    assert value(metrics, "vha_remediator_webhook_requests_total", code="413") == 2
    assert value(metrics, "vha_remediator_webhook_requests_total", code="200") == 1
    assert (await client.get("/api/v1/alerts")).status == 405


async def test_basic_auth(aiohttp_client: Any, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    section = remediator_section(str(tmp_path / "j.sqlite"))
    del section["bearer_token_env"]
    section["basic_auth"] = {"user": "alertmanager", "password_file": str(tmp_path / "pw")}
    os.environ["VHA_TEST_DEAD_PW"] = "x"
    client = await aiohttp_client(create_app(stack_config([DEAD_VCENTER], section)))
    body = payload(alert("reset_vm", vm="web-1"))
    ok = {"Authorization": "Basic " + base64.b64encode(b"alertmanager:s3cret").decode()}
    assert (await client.post("/api/v1/alerts", json=body, headers=ok)).status == 200
    wrong = {"Authorization": "Basic " + base64.b64encode(b"alertmanager:s3cre").decode()}
    resp = await client.post("/api/v1/alerts", json=body, headers=wrong)
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert (await client.get("/api/v1/actions", headers=ok)).status == 200
    assert (await client.get("/api/v1/actions", headers=AUTH)).status == 401


async def test_unwritable_journal_answers_503_so_alertmanager_retries(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    app = create_app(dead_config(tmp_path))
    client = await aiohttp_client(app)
    engine = app[ENGINE]
    await engine.db(engine.j.db.execute, "PRAGMA query_only=ON")
    resp = await client.post(
        "/api/v1/alerts", json=payload(alert("restart_vm", vm_id="vm-1")), headers=AUTH
    )
    assert resp.status == 503 and "retry" in (await resp.json())["error"]
    await engine.db(engine.j.db.execute, "PRAGMA query_only=OFF")
    resp = await client.post(
        "/api/v1/alerts", json=payload(alert("restart_vm", vm_id="vm-1")), headers=AUTH
    )
    assert resp.status == 200
    assert (await client.get("/readyz")).status == 200


async def test_serves_tls_and_stops_cleanly(tmp_path: Path, unused_tcp_port: int) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    cfg = dead_config(
        tmp_path,
        listen=f"127.0.0.1:{unused_tcp_port}",
        tls={"cert_file": str(cert), "key_file": str(key)},
    )
    stop = asyncio.Event()
    server = asyncio.create_task(serve(cfg, parse_remediator_config(cfg), stop))
    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{unused_tcp_port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(50):
                try:
                    async with session.get(url + "/healthz", ssl=ctx) as resp:
                        assert resp.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the TLS listener never came up")
            async with session.post(
                url + "/api/v1/alerts", json=payload(), headers=AUTH, ssl=ctx
            ) as resp:
                assert resp.status == 200
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)


def test_app_keys_are_typed() -> None:
    assert isinstance(ENGINE, web.AppKey)
