"""The fault-API state endpoints (datastores, datastore perf, guest, sensors) share one
opening in sim/api.go (serveState): GET answers the state, POST reads a JSON object and
answers the new state, anything else is a 405. These tests pin that contract for all four,
so that the shared helper cannot drift from what each endpoint answered on its own."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from sim.harness import Simulator


def _raw(sim: Simulator, method: str, path: str, data: bytes | None) -> tuple[int, Any]:
    """One request with an arbitrary body (the harness only sends JSON objects)."""
    req = urllib.request.Request(sim.api_url + path, data=data, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _paths(sim: Simulator) -> list[str]:
    inv = sim.inventory()
    q = lambda name: urllib.parse.quote(name, safe="")  # noqa: E731
    ds = sim.datastores()[0]["name"]
    return [
        f"/api/v1/datastores/{q(ds)}",
        f"/api/v1/datastores/{q(ds)}/perf",
        f"/api/v1/guest/{q(inv['vms'][0]['name'])}",
        f"/api/v1/sensors/{q(inv['hosts'][0]['name'])}",
    ]


@pytest.fixture(scope="module")
def state_sim(sim_binary: Any) -> Any:
    sim = Simulator(datacenters=1, clusters=1, hosts=2, vms=2, binary=sim_binary)
    sim.start()
    yield sim
    sim.stop()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_naming_get_and_post(state_sim: Simulator, method: str) -> None:
    for path in _paths(state_sim):
        status, body = _raw(state_sim, method, path, b"{}")
        assert (status, body) == (
            405,
            {"error": f"method {method} not allowed here (allowed: GET, POST)"},
        ), path


@pytest.mark.parametrize("data", [b"[1, 2]", b"null", b"not json", b'"x"'])
def test_a_post_body_that_is_not_an_object_is_400(state_sim: Simulator, data: bytes) -> None:
    for path in _paths(state_sim):
        assert _raw(state_sim, "POST", path, data) == (
            400,
            {"error": "body must be a JSON object"},
        ), path


def test_an_empty_post_changes_nothing_and_answers_the_state_get_answers(
    state_sim: Simulator,
) -> None:
    for path in _paths(state_sim):
        status, before = _raw(state_sim, "GET", path, None)
        assert status == 200, path
        if path.startswith("/api/v1/sensors/"):
            # a sensor POST names its sensor: an empty one is refused after the opening
            assert _raw(state_sim, "POST", path, b"") == (400, {"error": "sensor: required"})
            continue
        assert _raw(state_sim, "POST", path, b"") == (200, before), path
        assert _raw(state_sim, "POST", path, b"{}") == (200, before), path


def test_unknown_targets_are_404_before_the_method_is_looked_at(state_sim: Simulator) -> None:
    for path, what in [
        ("/api/v1/datastores/nope", "unknown datastore"),
        ("/api/v1/datastores/nope/perf", "unknown datastore"),
        ("/api/v1/guest/nope", "unknown vm"),
        ("/api/v1/sensors/nope", "unknown host"),
    ]:
        status, body = _raw(state_sim, "PUT", path, b"{}")
        assert status == 404 and what in body["error"], (path, body)
