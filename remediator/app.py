"""The HTTP face of the remediator: the Alertmanager webhook, the journal API and health.

The webhook does three things and nothing slow: check who is calling, check what was
sent, and write it to the journal durably.  Only then does it answer 200; the engine does
the work afterwards.  Every failure is an HTTP status with a one-line reason (401, 400,
413, 503), never a traceback, and never takes the service down.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import html
import logging
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vcenter.config import Config

from . import duplicates, stranded
from .alerts import PayloadError, parse_payload
from .config import RemediatorConfig, parse_remediator_config
from .engine import Engine
from .journal import STATES, Action, JournalError
from .logsafe import install as install_safe_logging
from .metrics import Metrics
from .orchestrate import tier_label

log = logging.getLogger("remediator")
install_safe_logging(log)

CONFIG = web.AppKey("config", Config)
RCONFIG = web.AppKey("rconfig", RemediatorConfig)
ENGINE = web.AppKey("engine", Engine)
METRICS = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LINGER_SECONDS = 2.0  # the most an early answer waits for the rest of an unread body
SHUTDOWN_SECONDS = 2.0  # the most a shutdown waits for requests in flight


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status, headers=headers)


def _raw(text: str) -> bytes:
    """A header value as the bytes that were sent (aiohttp keeps non-UTF-8 bytes as
    surrogate escapes, which a plain ``encode()`` refuses)."""
    return text.encode("utf-8", "surrogateescape")


def authorized(request: web.Request, rcfg: RemediatorConfig) -> bool:
    """Bearer token or basic auth, compared in constant time (no early exit on a mismatch)."""
    if rcfg.auth == "none":
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if rcfg.auth == "bearer":
        assert rcfg.bearer_token is not None
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(_raw(value), rcfg.bearer_token.get().encode())
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(_raw(value), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # not base64, or not UTF-8 inside
        return False
    assert rcfg.basic_user is not None and rcfg.basic_password is not None
    user_ok = hmac.compare_digest(user.encode(), rcfg.basic_user.encode())
    pass_ok = hmac.compare_digest(password.encode(), rcfg.basic_password.get().encode())
    return user_ok & pass_ok


def _challenge(rcfg: RemediatorConfig) -> dict[str, str]:
    if rcfg.auth == "basic":
        return {"WWW-Authenticate": 'Basic realm="vha-remediator"'}
    return {"WWW-Authenticate": 'Bearer realm="vha-remediator"'}


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever goes wrong inside, the client gets a status and one line, never a trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return _error(exc.status, exc.reason)
        raise
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - the service keeps serving
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error(500, "internal error (see the remediator's log)")


class _SlowBody(Exception):
    """The client did not send its whole body within the body timeout."""


async def _read_body(request: web.Request, limit: int, timeout: float) -> bytes | None:
    """The body, or None as soon as it exceeds ``limit`` (declared or streamed).

    Raises :class:`_SlowBody` when it takes longer than ``timeout`` in all: a client that
    trickles its body would otherwise hold a connection (and a shutdown) for as long as
    it likes.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
    except TimeoutError:
        raise _SlowBody from None
    return b"".join(chunks)


async def receive_alerts(request: web.Request) -> web.Response:
    response = await _receive(request)
    request.app[METRICS].webhook_requests.labels(code=str(response.status)).inc()
    return response


async def _receive(request: web.Request) -> web.Response:
    rcfg = request.app[RCONFIG]
    if not authorized(request, rcfg):
        return _error(401, "authentication required", **_challenge(rcfg))
    try:
        body = await _read_body(request, rcfg.max_body_bytes, rcfg.body_timeout_seconds)
    except _SlowBody:
        resp = _error(408, f"body not received within {rcfg.body_timeout_seconds:.0f}s")
        resp.force_close()
        return resp
    if body is None:
        return _error(413, f"body larger than {rcfg.max_body_bytes} bytes")
    try:
        delivery = parse_payload(body)
    except PayloadError as exc:
        return _error(400, str(exc))
    engine = request.app[ENGINE]
    if not engine.running:
        return _error(503, "the remediator is starting or stopping; retry")
    try:
        result = await engine.accept(body.decode(), delivery, request.remote or "")
    except JournalError as exc:
        request.app[METRICS].journal_errors.inc()
        log.error("delivery not journaled, answering 503 so Alertmanager retries: %s", exc)
        return _error(503, "journal unavailable; retry later")
    return web.json_response(
        {
            "status": "accepted",
            "delivery": result.delivery_id,
            "alerts": len(delivery.alerts),
            "created": result.created,
            "duplicates": result.duplicates,
            "attached": result.attached,
            "cancelled": result.cancelled,
            "ignored": result.ignored,
        }
    )


def _int_arg(request: web.Request, name: str, default: int | None, maximum: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"{name} must be a whole number") from None
    if value < 0:
        raise web.HTTPBadRequest(reason=f"{name} must be >= 0")
    return min(value, maximum)


def _public(a: Action) -> dict[str, Any]:
    out = a.as_dict()
    out["dry_run"] = bool(out["dry_run"])
    return out


async def list_actions(request: web.Request) -> web.Response:
    rcfg = request.app[RCONFIG]
    if not authorized(request, rcfg):
        return _error(401, "authentication required", **_challenge(rcfg))
    state = request.query.get("state", "")
    if state and state not in STATES:
        return _error(400, f"state must be one of {', '.join(STATES)}")
    engine = request.app[ENGINE]
    if engine.journal is None:
        return _error(503, "journal not open")
    limit = _int_arg(request, "limit", 100, 1000) or 100
    actions = await engine.db(
        engine.j.list_actions,
        vm=request.query.get("vm", ""),
        host=request.query.get("host", ""),
        state=state,
        kind=request.query.get("kind", ""),
        vcenter=request.query.get("vcenter", ""),
        parent=_int_arg(request, "parent", None, 1 << 62),
        before=_int_arg(request, "before", None, 1 << 62),
        limit=limit,
    )
    items = []
    for a in actions:
        item = _public(a)
        if not a.is_step:
            item["steps"] = await engine.db(engine.j.step_counts, a.id)
        items.append(item)
    return web.json_response({"count": len(items), "actions": items})


async def get_action(request: web.Request) -> web.Response:
    rcfg = request.app[RCONFIG]
    if not authorized(request, rcfg):
        return _error(401, "authentication required", **_challenge(rcfg))
    engine = request.app[ENGINE]
    if engine.journal is None:
        return _error(503, "journal not open")
    raw_id = request.match_info["id"]
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 19:
        return _error(400, "action id must be a whole number of at most 19 digits")
    action_id = int(raw_id)
    if action_id >= 1 << 63:  # SQLite's integers are 64-bit
        return _error(404, f"no action {action_id}")
    action = await engine.db(engine.j.get, action_id)
    if action is None:
        return _error(404, f"no action {action_id}")
    out = _public(action)
    out["events"] = await engine.db(engine.j.events, action_id)
    root = action.parent_id or action.id
    out["alerts"] = await engine.db(engine.j.alerts_of, root)
    if not action.is_step:
        out["steps"] = [_public(s) for s in await engine.db(engine.j.siblings, action.id)]
    return web.json_response(out)


async def list_unregistered(request: web.Request) -> web.Response:
    """VMs the remediator unregistered and could not register again yet."""
    rcfg = request.app[RCONFIG]
    if not authorized(request, rcfg):
        return _error(401, "authentication required", **_challenge(rcfg))
    engine = request.app[ENGINE]
    if engine.journal is None:
        return _error(503, "journal not open")
    vms = await engine.db(stranded.find, engine.j)
    return web.json_response({"count": len(vms), "vms": vms})


async def metrics_handler(request: web.Request) -> web.Response:
    try:
        await request.app[ENGINE].refresh_counts()
    except Exception as exc:  # noqa: BLE001 - the rest of the metrics are still served
        log.error("journal counts unavailable: %s", exc)
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when deliveries can be journaled; vCenter and guard state are reported too."""
    engine = request.app[ENGINE]
    vcenters = {
        name: {"up": h.up, "error": h.error, "since": h.since} for name, h in engine.health.items()
    }
    now = time.time()
    tripped = {
        f"{vc}/{cluster}": verdict.reason
        for vc, cluster in engine.guard.clusters()
        if (verdict := engine.guard.verdict(vc, cluster, now)).tripped
    }
    body: dict[str, Any] = {
        "dry_run": engine.rcfg.dry_run,
        "vcenters": vcenters,
        "guard_tripped": tripped,
    }
    if not engine.running or engine.journal is None:
        body["status"] = "not ready: journal not open"
        return web.json_response(body, status=503)
    try:
        body["backlog"] = await engine.db(engine.j.backlog)
    except Exception as exc:  # noqa: BLE001 - an unreadable journal is "not ready"
        body["status"] = f"not ready: journal unreadable: {exc}"
        return web.json_response(body, status=503)
    body["status"] = "ready"
    return web.json_response(body)


_INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>vha remediator</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}}
.done{{color:#070}}.failed,.refused,.unplaced{{color:#b00}}.pending,.running{{color:#a60}}</style>
</head><body><h1>vSphere HA remediator</h1>
<p>{mode} &middot; backlog {backlog} &middot; guard: {guard} &middot;
<a href="api/v1/actions">JSON</a> &middot; <a href="metrics">metrics</a></p>
{stranded}
<table><tr><th>id</th><th>parent</th><th>kind</th><th>state</th><th>vCenter</th><th>cluster</th>
<th>VM</th><th>host</th><th>target</th><th>priority</th><th>by</th><th>responsible</th>
<th>updated</th><th>reason</th></tr>
{rows}</table></body></html>
"""


async def index(request: web.Request) -> web.Response:
    rcfg = request.app[RCONFIG]
    if not authorized(request, rcfg):
        return _error(401, "authentication required", **_challenge(rcfg))
    engine = request.app[ENGINE]
    if engine.journal is None:
        return _error(503, "journal not open")
    actions = await engine.db(engine.j.list_actions, limit=100)
    backlog = await engine.db(engine.j.backlog)
    e = html.escape
    # who was responsible, per VM, from each decision's journaled "ha" detail (issue 10)
    ha_by = {a.id: (a.detail or {}).get("ha") or {} for a in actions if a.parent_id is None}

    def responsible(a: Action) -> str:
        if a.parent_id is None:
            counts: dict[str, int] = {}
            for r in ha_by.get(a.id, {}).values():
                counts[str(r.get("actor", ""))] = counts.get(str(r.get("actor", "")), 0) + 1
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        r = ha_by.get(a.parent_id, {}).get(a.vm_id)
        return f"{r.get('actor', '')}: {r.get('reason', '')}" if r else ""

    rows = "\n".join(
        f'<tr class="{e(a.state)}"><td>{a.id}</td><td>{a.parent_id or ""}</td><td>{e(a.kind)}</td>'
        f"<td>{e(a.state)}</td><td>{e(a.vcenter)}</td><td>{e(a.cluster)}</td><td>{e(a.vm)}</td>"
        f"<td>{e(a.host)}</td><td>{e(a.target_host)}</td>"
        f"<td>{e(' '.join(filter(None, (a.priority, tier_label(a.detail)))))}</td>"
        f"<td>{e(a.restarted_by)}</td><td>{e(responsible(a))}</td>"
        f"<td>{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(a.updated_at))}</td>"
        f"<td>{e(a.reason)}</td></tr>"
        for a in actions
    )
    now = time.time()
    tripped = [
        f"{c}" for vc, c in engine.guard.clusters() if engine.guard.verdict(vc, c, now).tripped
    ]
    page = _INDEX.format(
        mode="<b>dry run</b> (changes nothing)" if rcfg.dry_run else "acting",
        backlog=backlog,
        guard=e("tripped on " + ", ".join(tripped)) if tripped else "ok",
        rows=rows,
        stranded=stranded.banner(await engine.db(stranded.find, engine.j))
        + duplicates.banner(engine.duplicates_left()),
    )
    return web.Response(text=page, content_type="text/html")


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = app[ENGINE]
    await engine.start()
    yield
    await engine.stop()


def create_app(config: Config, rcfg: RemediatorConfig | None = None) -> web.Application:
    """The aiohttp application; the engine starts and stops with it (``cleanup_ctx``)."""
    rcfg = rcfg or parse_remediator_config(config)
    metrics = Metrics()
    app = web.Application(middlewares=[_errors], client_max_size=rcfg.max_body_bytes)
    app[CONFIG] = config
    app[RCONFIG] = rcfg
    app[METRICS] = metrics
    app[ENGINE] = Engine(config, rcfg, metrics)
    app.cleanup_ctx.append(_engine_ctx)
    app.router.add_post("/api/v1/alerts", receive_alerts)
    app.router.add_get("/api/v1/actions", list_actions)
    app.router.add_get("/api/v1/actions/{id}", get_action)
    app.router.add_get("/api/v1/unregistered", list_unregistered)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    return app


def server_ssl(rcfg: RemediatorConfig) -> ssl.SSLContext | None:
    if rcfg.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(rcfg.tls.cert_file, rcfg.tls.key_file)
    return ctx


async def serve(config: Config, rcfg: RemediatorConfig, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set or SIGINT/SIGTERM arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    app = create_app(config, rcfg)
    # keepalive_timeout also runs from the moment a connection opens until its request's
    # headers are complete, so it is the header read timeout too.  After an early answer
    # (401, 408, 413) aiohttp reads and drops the rest of the body for lingering_time so the
    # client sees the answer; 2 s is enough for that and little for a slow client.  A
    # stalled request holds a shutdown for at most 2 s: a delivery's journal write takes
    # milliseconds, and Alertmanager retries what got 503 or no answer.
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=rcfg.header_timeout_seconds,
        lingering_time=min(rcfg.body_timeout_seconds, LINGER_SECONDS),
        shutdown_timeout=min(rcfg.body_timeout_seconds, SHUTDOWN_SECONDS),
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, rcfg.listen_host, rcfg.listen_port, ssl_context=server_ssl(rcfg))
        await site.start()
        scheme = "https" if rcfg.tls else "http"
        log.info(
            "remediator listening on %s://%s:%d (auth: %s, dry_run: %s)",
            scheme,
            rcfg.listen_host,
            rcfg.listen_port,
            rcfg.auth,
            rcfg.dry_run,
        )
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()


def run(config: Config) -> None:
    """Run the remediator from the shared config until SIGINT/SIGTERM."""
    rcfg = parse_remediator_config(config)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    if rcfg.auth == "none":
        log.warning("authentication is disabled (remediator.auth: none)")
    try:
        asyncio.run(serve(config, rcfg))
    except JournalError as exc:  # e.g. another remediator holds the journal: one line
        # A start-up error like the CLI's others (one line, exit 2), whichever entry point.
        print(f"vha-remediator: start-up error: remediator.journal: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
